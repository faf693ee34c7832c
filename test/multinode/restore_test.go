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
