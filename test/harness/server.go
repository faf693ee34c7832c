package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Server is one `monokube server` process with its own data dir and port.
type Server struct {
	Bin        string
	DataDir    string
	ConfigPath string
	// Address and Port are where the API server listens (127.0.0.1 and a
	// free port unless a test changes them before WriteConfig).
	Address string
	Port    int
	LogPath string
	// Env, when set, is the whole environment of the processes started
	// from now on (Start*, Run), for tests that must run as a user's
	// shell would, with nothing of the test's own environment.
	Env []string

	t      testing.TB
	cmd    *exec.Cmd
	exited chan struct{}
	// readySeen counts ready lines in the log already matched, so a restart
	// waits for its own.
	readySeen int
	exitErr   error
}

// NewServer prepares a server in a fresh temp dir, listening on a free
// loopback port. extraConfig is YAML appended under `spec:` (indented by
// two spaces), for tests that need more settings.
func NewServer(t testing.TB, extraConfig string) *Server {
	t.Helper()
	dir := t.TempDir()
	s := &Server{
		Bin:        Binary(t),
		DataDir:    filepath.Join(dir, "data"),
		ConfigPath: filepath.Join(dir, "monokube.yaml"),
		Address:    "127.0.0.1",
		Port:       FreePort(t),
		LogPath:    filepath.Join(dir, "server.log"),
		t:          t,
	}
	remember(&made.dataDirs, s.DataDir)
	s.WriteConfig("", extraConfig)
	t.Cleanup(func() {
		s.Kill()
		if t.Failed() {
			s.dumpLog()
		}
	})
	return s
}

// WriteConfig (re)writes the server's config file. apiExtra is YAML added
// to spec.api (indented by four spaces), specExtra YAML added to spec (two).
func (s *Server) WriteConfig(apiExtra, specExtra string) {
	s.t.Helper()
	config := fmt.Sprintf(`apiVersion: monokube.io/v1beta1
kind: ClusterConfig
spec:
  api:
    address: %s
    port: %d
%s%s`, s.Address, s.Port, apiExtra, specExtra)
	if err := os.WriteFile(s.ConfigPath, []byte(config), 0o600); err != nil {
		s.t.Fatal(err)
	}
}

// Start launches the server process (without waiting for readiness).
func (s *Server) Start() {
	s.t.Helper()
	s.StartArgs()
}

// StartArgs is Start with more `monokube server` flags.
func (s *Server) StartArgs(flags ...string) {
	s.t.Helper()
	s.startWith(append([]string{s.Bin, "server", "--data-dir", s.DataDir, "--config", s.ConfigPath}, flags...)...)
}

// startWith starts the server with the given command line, logging to LogPath.
func (s *Server) startWith(command ...string) {
	s.t.Helper()
	logFile, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	s.cmd = exec.Command(command[0], command[1:]...)
	s.cmd.Env = s.Env
	s.cmd.Stdout, s.cmd.Stderr = logFile, logFile
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start server: %v", err)
	}
	rememberProcess(s.cmd.Process.Pid)
	logFile.Close()
	s.exited = make(chan struct{})
	go func() {
		s.exitErr = s.cmd.Wait()
		close(s.exited)
	}()
}

// StartReady starts the server and waits until /readyz answers ok.
func (s *Server) StartReady() {
	s.t.Helper()
	s.Start()
	s.WaitReady(2 * time.Minute)
}

// WaitReady waits for /readyz through the admin kubeconfig, failing early
// if the process exits.
func (s *Server) WaitReady(timeout time.Duration) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := wait.PollUntilContextCancel(ctx, 25*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		select {
		case <-s.exited:
			return false, fmt.Errorf("server exited: %v", s.exitErr)
		default:
		}
		client, err := s.ClientOrNil()
		if err != nil || client == nil {
			return false, nil
		}
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		// /readyz covers the API server; the log line says every component
		// (controller-manager, scheduler) is up too.
		return err == nil && string(body) == "ok" && strings.Count(s.Log(), readyLine) > s.readySeen, nil
	})
	if err != nil {
		s.t.Fatalf("server not ready: %v", err)
	}
	s.readySeen = strings.Count(s.Log(), readyLine)
}

// readyLine is what the server logs once every component is ready.
const readyLine = `"monokube server is ready"`

// Exited reports whether the process started last has ended (by itself,
// or by Kill).
func (s *Server) Exited() bool {
	if s.exited == nil {
		return false
	}
	select {
	case <-s.exited:
		return true
	default:
		return false
	}
}

// PID is the server's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// AdminKubeconfig is the path of the admin kubeconfig.
func (s *Server) AdminKubeconfig() string { return filepath.Join(s.DataDir, "pki", "admin.conf") }

// ClientOrNil is an admin client made from the admin kubeconfig as it is
// now, or nil before the server wrote one.
func (s *Server) ClientOrNil() (kubernetes.Interface, error) {
	if _, err := os.Stat(s.AdminKubeconfig()); err != nil {
		return nil, nil
	}
	config, err := clientcmd.BuildConfigFromFlags("", s.AdminKubeconfig())
	if err != nil {
		return nil, err
	}
	config.Timeout = 5 * time.Second
	return kubernetes.NewForConfig(config)
}

// Client is a client-go clientset with admin rights.
func (s *Server) Client() kubernetes.Interface {
	s.t.Helper()
	client, err := s.ClientOrNil()
	if err != nil || client == nil {
		s.t.Fatalf("admin client: %v", err)
	}
	return client
}

// Kubectl runs the stock kubectl against the server with admin rights and
// returns its combined output.
func (s *Server) Kubectl(args ...string) (string, error) {
	return KubectlWith(s.AdminKubeconfig(), args...)
}

// KubectlWith runs the stock kubectl with a kubeconfig and returns its
// combined output.
func KubectlWith(kubeconfig string, args ...string) (string, error) {
	cmd := exec.Command(Kubectl, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// MustKubectl is Kubectl that fails the test on error.
func (s *Server) MustKubectl(args ...string) string {
	s.t.Helper()
	out, err := s.Kubectl(args...)
	if err != nil {
		s.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// Kill sends SIGKILL and waits for the process to be gone.
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// WaitExit waits up to timeout for the process to end on its own and
// returns its exit code.
func (s *Server) WaitExit(timeout time.Duration) (int, error) {
	select {
	case <-s.exited:
	case <-time.After(timeout):
		return -1, fmt.Errorf("still running after %s", timeout)
	}
	var exit *exec.ExitError
	if errors.As(s.exitErr, &exit) {
		return exit.ExitCode(), nil
	}
	return 0, s.exitErr
}

// Terminate sends SIGTERM and waits up to timeout. It returns the exit
// code and how long the exit took.
func (s *Server) Terminate(timeout time.Duration) (exitCode int, took time.Duration, err error) {
	began := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return -1, 0, err
	}
	select {
	case <-s.exited:
	case <-time.After(timeout):
		return -1, time.Since(began), fmt.Errorf("still running %s after SIGTERM", timeout)
	}
	took = time.Since(began)
	var exit *exec.ExitError
	if errors.As(s.exitErr, &exit) {
		return exit.ExitCode(), took, nil
	}
	return 0, took, s.exitErr
}

// Log returns what the server wrote so far.
func (s *Server) Log() string {
	raw, _ := os.ReadFile(s.LogPath)
	return string(raw)
}

// GrepLines returns the lines of text that contain substr, for messages.
func GrepLines(text, substr string) string {
	var lines []string
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, substr) {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines, "\n")
}

// dumpLog prints the end of the server log into the test output.
// With MONOKUBE_TEST_LOGS set, the whole log is also kept in that dir.
func (s *Server) dumpLog() {
	raw := []byte(s.Log())
	if dir := os.Getenv("MONOKUBE_TEST_LOGS"); dir != "" {
		_ = os.MkdirAll(dir, 0o755)
		_ = os.WriteFile(filepath.Join(dir, strings.ReplaceAll(s.t.Name(), "/", "_")+"-"+filepath.Base(filepath.Dir(s.LogPath))+".log"), raw, 0o644)
	}
	if len(raw) > 8000 {
		raw = raw[len(raw)-8000:]
	}
	s.t.Logf("--- last lines of %s ---\n%s", s.LogPath, bytes.TrimSpace(raw))
}

// Run runs the monokube binary with args against this server's data dir
// and returns stdout and stderr separately.
func (s *Server) Run(args ...string) (stdout, stderr string, err error) {
	cmd := exec.Command(s.Bin, append(args, "--data-dir", s.DataDir)...)
	cmd.Env = s.Env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// KubectlStdin is Kubectl with stdin, for `create -f -`.
func (s *Server) KubectlStdin(stdin string, args ...string) (string, error) {
	cmd := exec.Command(Kubectl, append([]string{"--kubeconfig", s.AdminKubeconfig()}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
