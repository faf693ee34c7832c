package service

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestSystemdUnitQuotesEveryWordAndKeepsTheTokenOut(t *testing.T) {
	spec := Spec{Role: "worker", Binary: "/usr/local/bin/monokube", Args: []string{"--node-name", "edge 1", "--node-label", "cost=$5%"}, TokenFile: TokenFile}
	unit, err := spec.Render(Systemd)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`ExecStart="/usr/local/bin/monokube" "worker" "--node-name" "edge 1" "--node-label" "cost=$$5%%" "--token-file" "/etc/monokube/worker-token"`,
		"Type=notify", "Delegate=yes", "KillMode=process", "Restart=always", "LimitNOFILE=1048576",
		"EnvironmentFile=-/etc/monokube/monokube-worker.env",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q:\n%s", want, unit)
		}
	}
	if spec.Path(Systemd) != "/etc/systemd/system/monokube-worker.service" {
		t.Errorf("path %s", spec.Path(Systemd))
	}
}

func TestOpenRCScriptEvaluatesToTheSameWords(t *testing.T) {
	spec := Spec{Role: "server", Binary: "/opt/mk/monokube", Args: []string{"--config", "/etc/it's here.yaml"}}
	script, err := spec.Render(OpenRC)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"#!/sbin/openrc-run", "supervisor=supervise-daemon", "command='/opt/mk/monokube'", "respawn_max=0"} {
		if !strings.Contains(script, want) {
			t.Errorf("script lacks %q:\n%s", want, script)
		}
	}
	if spec.Path(OpenRC) != "/etc/init.d/monokube" {
		t.Errorf("path %s", spec.Path(OpenRC))
	}
	// OpenRC evaluates command_args: the words must survive sh.
	var assignment string
	for _, line := range strings.Split(script, "\n") {
		if strings.HasPrefix(line, "command_args=") {
			assignment = line
		}
	}
	out, err := exec.Command("sh", "-c", assignment+`; eval "set -- $command_args"; printf '%s\n' "$@"`).Output()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Split(strings.TrimSpace(string(out)), "\n"), []string{"server", "--config", "/etc/it's here.yaml"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("command_args evaluate to %q, want %q", got, want)
	}
}

func TestRenderRefusesARelativeBinaryAndNoInit(t *testing.T) {
	if _, err := (Spec{Role: "server", Binary: "monokube"}).Render(Systemd); err == nil {
		t.Error("relative binary accepted")
	}
	if _, err := (Spec{Role: "server", Binary: "/bin/monokube"}).Render(None); err == nil {
		t.Error("rendered for no init system")
	}
}

func TestWriteTokenIsPrivateEvenOverAnOpenFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "etc", "worker-token")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeToken(path, "MK1.secret"); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v, %v; want 0600", info.Mode().Perm(), err)
	}
}

// TestSystemdAnalyzeAcceptsTheUnit runs systemd's own checker where it
// is installed (it is, without systemd running, on Debian).
func TestSystemdAnalyzeAcceptsTheUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	spec := Spec{Role: "worker", Binary: "/bin/true", Args: []string{"--node-label", "cost=$5%", "--node-name", "edge 1"}, TokenFile: TokenFile}
	unit, err := spec.Render(Systemd)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), spec.Name()+".service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s\n%s", err, out, unit)
	}
}

func TestNotifyReadySendsReadyToSystemdsSocket(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", socket)
	TakeNotifySocket()
	if os.Getenv("NOTIFY_SOCKET") != "" {
		t.Error("NOTIFY_SOCKET is still in the environment for the embedded components to find")
	}
	NotifyReady()
	buf := make([]byte, 64)
	n, _, err := conn.ReadFromUnix(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("got %q, %v", buf[:n], err)
	}
}
