package integration

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/monokube/monokube/test/harness"
)

// commandPaths walks `monokube help` from the root and returns every
// command path ("token create"), read from each help's command list.
func commandPaths(t *testing.T, bin string, parent []string) [][]string {
	t.Helper()
	out, err := exec.Command(bin, append([]string{"help"}, parent...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("monokube help %s: %v\n%s", strings.Join(parent, " "), err, out)
	}
	var paths [][]string
	inList := false
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "Available Commands:"):
			inList = true
		case inList && strings.TrimSpace(line) == "":
			inList = false
		case inList:
			name := strings.Fields(line)[0]
			if name == "help" || name == "completion" {
				continue
			}
			path := append(append([]string{}, parent...), name)
			paths = append(paths, path)
			paths = append(paths, commandPaths(t, bin, path)...)
		}
	}
	return paths
}

// TestEveryCommandHasHelpWithAnExample: the brief promises --help with an
// example on every command, and the README's command table relies on it.
func TestEveryCommandHasHelpWithAnExample(t *testing.T) {
	bin := harness.Binary(t)
	paths := commandPaths(t, bin, nil)
	// The README's table, at least: a walk that finds fewer proves nothing.
	for _, want := range []string{"server", "worker", "token create", "token list", "token invalidate", "user create", "kubeconfig admin",
		"kubeconfig create", "kubectl", "ctr", "crictl", "default-config", "config validate", "certs status", "images list",
		"images import", "reset", "version"} {
		found := false
		for _, path := range paths {
			found = found || strings.Join(path, " ") == want
		}
		if !found {
			t.Errorf("command %q missing from the help tree", want)
		}
	}
	for _, path := range paths {
		out, err := exec.Command(bin, append(path, "--help")...).CombinedOutput()
		if len(path) > 0 && (path[0] == "kubectl" || path[0] == "ctr" || path[0] == "crictl") {
			// These pass their arguments on; `help` shows monokube's own page.
			out, err = exec.Command(bin, append([]string{"help"}, path...)...).CombinedOutput()
		}
		if err != nil {
			t.Errorf("monokube %s --help: %v\n%s", strings.Join(path, " "), err, out)
			continue
		}
		if !strings.Contains(string(out), "Examples:") {
			t.Errorf("monokube %s --help has no example", strings.Join(path, " "))
		}
	}
	t.Logf("%d commands checked", len(paths))
}

// TestVersionAndBundledImages checks `version` and `images list` against
// what the build put in.
func TestVersionAndBundledImages(t *testing.T) {
	bin := harness.Binary(t)
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "v1.37.1") || !strings.Contains(string(out), "monokube") {
		t.Errorf("version (err %v) must name monokube and Kubernetes v1.37.1:\n%s", err, out)
	}
	out, err = exec.Command(bin, "images", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("images list: %v\n%s", err, out)
	}
	for _, want := range []string{"monokube.io/pause:3.10", "runc", "containerd-shim-runc-v2", "bridge", "host-local", "portmap", "loopback", "crictl"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("images list does not show %s:\n%s", want, out)
		}
	}
}

// TestKubeconfigCommands covers kubeconfig admin --server, kubeconfig
// create (the alias of user create) and --expiry, then uses the result.
func TestKubeconfigCommands(t *testing.T) {
	server := harness.NewServer(t, "")
	server.StartReady()

	admin, _, err := server.Run("kubeconfig", "admin", "--server", "https://k8s.example.test:7443")
	if err != nil {
		t.Fatal(err)
	}
	if config, err := clientcmd.Load([]byte(admin)); err != nil || clusterServer(config.Clusters) != "https://k8s.example.test:7443" {
		t.Errorf("kubeconfig admin --server: server %q (err %v)", clusterServer(config.Clusters), err)
	}

	kubeconfig, stderr, err := server.Run("kubeconfig", "create", "dora", "--groups", "qa,ops", "--expiry", "2h")
	if err != nil {
		t.Fatalf("kubeconfig create: %v\n%s", err, stderr)
	}
	config, err := clientcmd.Load([]byte(kubeconfig))
	if err != nil {
		t.Fatal(err)
	}
	var certPEM []byte
	for _, auth := range config.AuthInfos {
		certPEM = auth.ClientCertificateData
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		t.Fatal("no client certificate in the kubeconfig")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(cert.NotAfter); left < 2*time.Hour-2*time.Minute || left > 2*time.Hour+time.Minute {
		t.Errorf("--expiry 2h gave a certificate valid for %s", left.Round(time.Second))
	}
	if cert.Subject.CommonName != "dora" || strings.Join(cert.Subject.Organization, ",") != "qa,ops" {
		t.Errorf("subject %v, want CN=dora O=qa,ops", cert.Subject)
	}
	path := t.TempDir() + "/dora.conf"
	if err := clientcmd.WriteToFile(*config, path); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(harness.Kubectl, "--kubeconfig", path, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username} {.status.userInfo.groups}").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "dora ") || !strings.Contains(string(out), "qa") || !strings.Contains(string(out), "ops") {
		t.Errorf("the cluster does not see the user as created (err %v): %s", err, out)
	}
}

func clusterServer(clusters map[string]*clientcmdapi.Cluster) string {
	for _, cluster := range clusters {
		return cluster.Server
	}
	return ""
}

// TestAPIPortFlagWinsOverTheConfig starts a server whose config names one
// port with --api-port naming another.
func TestAPIPortFlagWinsOverTheConfig(t *testing.T) {
	server := harness.NewServer(t, "")
	configured := server.Port
	server.Port = harness.FreePort(t)
	server.StartArgs("--api-port", fmt.Sprint(server.Port))
	server.WaitReady(2 * time.Minute)
	if harness.PortFree(server.Port) {
		t.Errorf("nothing listens on --api-port %d", server.Port)
	}
	if !harness.PortFree(configured) {
		t.Errorf("the config's port %d is in use although --api-port overrides it", configured)
	}
	admin, _, err := server.Run("kubeconfig", "admin")
	if err != nil || !strings.Contains(admin, fmt.Sprintf(":%d", server.Port)) {
		t.Errorf("admin kubeconfig does not name --api-port %d (err %v)", server.Port, err)
	}
}

// TestTwoServersSideBySide runs two control planes on one machine with
// their own data dirs and ports, as the README says: the second moves the
// scheduler's and controller-manager's health ports.
func TestTwoServersSideBySide(t *testing.T) {
	first := harness.NewServer(t, "")
	second := harness.NewServer(t, fmt.Sprintf(`  scheduler:
    extraArgs:
      secure-port: "%d"
  controllerManager:
    extraArgs:
      secure-port: "%d"
`, harness.FreePort(t), harness.FreePort(t)))
	first.StartReady()
	second.StartReady()
	first.MustKubectl("create", "namespace", "only-on-first")
	if out, err := second.Kubectl("get", "namespace", "only-on-first"); err == nil {
		t.Errorf("the second server sees the first one's namespace: they share state\n%s", out)
	}
	for _, server := range []*harness.Server{first, second} {
		if out := strings.TrimSpace(server.MustKubectl("get", "--raw", "/readyz")); out != "ok" {
			t.Errorf("server on port %d: /readyz %q", server.Port, out)
		}
	}
}
