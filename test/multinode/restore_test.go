package multinode

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/monokube/monokube/test/harness"
)

// TestRestoreKeepsWorkers backs a server up, loses its data dir, restores
// the archive and starts it again: the worker that joined before the
// backup reconnects with the credentials it has (same CA), without a new
// token, and the objects come back.
func TestRestoreKeepsWorkers(t *testing.T) {
	c := harness.NewCluster(t, "")
	c.Server.WriteConfig("    encryptionAtRest: true\n", "")
	c.Server.StartServer()
	c.Server.WaitReady(3 * time.Minute)
	worker := c.AddWorker()
	worker.StartWorker(c.Token("--expiry=1h"))
	c.WaitReady(worker)
	c.Server.MustKubectl("create", "secret", "generic", "kept", "--from-literal=k=v")

	stdout, stderr, err := c.Server.Run("backup", "--config", c.Server.ConfigPath, "--save-path", t.TempDir())
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, stderr)
	}
	archive := strings.TrimSpace(stdout)
	c.Server.Kill()
	if err := os.Rename(c.Server.DataDir, filepath.Join(filepath.Dir(c.Server.DataDir), "lost")); err != nil {
		t.Fatal(err)
	}
	if _, stderr, err := c.Server.Run("restore", archive); err != nil {
		t.Fatalf("restore: %v\n%s", err, stderr)
	}
	restarted := time.Now()
	c.Server.StartServer()
	c.Server.WaitReady(3 * time.Minute)
	if got := c.Server.MustKubectl("get", "secret", "kept", "-o", "jsonpath={.data.k}"); got != "dg==" {
		t.Fatalf("restored Secret reads %q", got)
	}
	harness.Poll(t, 2*time.Minute, "the worker renews its lease with the restored server", func(ctx context.Context) (bool, error) {
		lease, err := c.Client().CoordinationV1().Leases("kube-node-lease").Get(ctx, worker.Name, metav1.GetOptions{})
		return err == nil && lease.Spec.RenewTime != nil && lease.Spec.RenewTime.After(restarted), nil
	})
	c.WaitReady(worker)
	if strings.Contains(worker.Log(), "pass a join token") {
		t.Fatal("the worker asked for a new token")
	}
}

// TestRestoreWithTheDefaults is restore as the README tells a user, on a
// machine where nothing about monokube is set: no --data-dir, no --config,
// no environment (the launcher unpacks its payload into the default data
// dir first, which once made every such restore fail with "not empty").
// backup, the data dir lost, restore, server: the objects are back.
func TestRestoreWithTheDefaults(t *testing.T) {
	c := harness.NewCluster(t, "")
	n := c.Server
	n.Env = harness.UserEnv
	// The config in its default place: only so that admin.conf names the
	// node's address, which the test reaches, rather than 127.0.0.1.
	config, err := os.ReadFile(n.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.MachineDir("/etc/monokube"), "monokube.yaml"), config, 0o600); err != nil {
		t.Fatal(err)
	}
	// The server keeps its state in the machine's /var/lib/monokube; the
	// test reads it (admin.conf) from the host side.
	n.DataDir = n.MachineDir("/var/lib/monokube")
	n.StartIn("server")
	n.WaitReady(3 * time.Minute)
	n.MustKubectl("create", "configmap", "kept", "--from-literal=k=v")

	out, err := n.InNode(n.Bin, "backup")
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	inNode := lines[len(lines)-1]
	if !strings.HasPrefix(inNode, "/var/lib/monokube/snapshots/") {
		t.Fatalf("backup printed %q, want an archive in /var/lib/monokube/snapshots", out)
	}
	archive := filepath.Join(t.TempDir(), filepath.Base(inNode))
	if err := os.Rename(filepath.Join(n.DataDir, strings.TrimPrefix(inNode, "/var/lib/monokube/")), archive); err != nil {
		t.Fatal(err)
	}
	n.Kill()
	// A fresh machine: /var/lib/monokube is empty.
	entries, _ := os.ReadDir(n.DataDir)
	for _, entry := range entries {
		if err := os.RemoveAll(filepath.Join(n.DataDir, entry.Name())); err != nil {
			t.Fatal(err)
		}
	}

	if out, err := n.InNode(n.Bin, "restore", archive); err != nil {
		t.Fatalf("restore into a fresh default data dir: %v\n%s", err, out)
	}
	n.StartIn("server")
	n.WaitReady(3 * time.Minute)
	if got := n.MustKubectl("get", "configmap", "kept", "-o", "jsonpath={.data.k}"); got != "v" {
		t.Fatalf("restored ConfigMap reads %q", got)
	}
	if out, err := n.InNode(n.Bin, "restore", archive); err == nil || !strings.Contains(out, "not empty") {
		t.Fatalf("a second restore over the running server's data: err %v, want a refusal\n%s", err, out)
	}
}
