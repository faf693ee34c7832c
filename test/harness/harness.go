// Package harness starts the real monokube binary for tests and talks to it
// with the stock kubectl and client-go. It is the base the end-to-end and
// multi-node suites build on.
//
// The pieces, smallest first:
//   - Server: one `monokube server` on loopback with its own data dir.
//   - Network: an isolated L2 segment (a bridge in a network namespace of
//     its own, no uplink); the host has one leg on it to reach the nodes.
//   - Node: a machine of its own on a Network: network namespace, a
//     persistent mount namespace with private /run, /var/lib/monokube,
//     /var/lib/kubelet, /etc/cni and /etc/monokube, and a cgroup root below
//     the test's own cgroup. Start runs `server --enable-worker`,
//     StartWorker runs `monokube worker`.
//   - Cluster: a server Node plus worker Nodes on one Network.
//
// Everything is removed when the test ends, pass or fail: processes (found
// by mount namespace and cgroup, never by name), mounts, namespaces and
// cgroups. MONOKUBE_TEST_LOGS=dir keeps the full logs of failed tests.
package harness

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// Binary is the monokube binary under test: $MONOKUBE_BIN, or bin/monokube
// at the repository root.
func Binary(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("MONOKUBE_BIN"); bin != "" {
		return bin
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for dir := wd; dir != "/"; dir = filepath.Dir(dir) {
		candidate := filepath.Join(dir, "bin", "monokube")
		if _, err := os.Stat(candidate); err == nil {
			return candidate
		}
	}
	t.Fatal("monokube binary not found: run `make build` or set MONOKUBE_BIN")
	return ""
}

// Kubectl is the independent kubectl our tests use, never monokube's
// embedded one: $MONOKUBE_KUBECTL (the Makefile sets it to bin/kubectl,
// upstream's own cmd/kubectl built from the pinned Kubernetes module), or
// bin/kubectl next to the binary under test. Nothing is taken from PATH, so
// a machine without any kubectl runs the tests all the same.
var Kubectl = kubectlPath()

func kubectlPath() string {
	if path := os.Getenv("MONOKUBE_KUBECTL"); path != "" {
		return path
	}
	if bin := os.Getenv("MONOKUBE_BIN"); bin != "" {
		return filepath.Join(filepath.Dir(bin), "kubectl")
	}
	wd, _ := os.Getwd()
	for dir := wd; dir != "/"; dir = filepath.Dir(dir) {
		if candidate := filepath.Join(dir, "bin", "kubectl"); fileExists(candidate) {
			return candidate
		}
	}
	return "bin/kubectl (not built: run `make kubectl` or set MONOKUBE_KUBECTL)"
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// PortFree reports whether port can be listened on at 127.0.0.1.
func PortFree(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}
