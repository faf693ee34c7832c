package multinode

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/monokube/monokube/test/harness"
)

// TestExternalSQLDatastores runs two servers on one real PostgreSQL, then
// on one real MariaDB: objects written through one are read through the
// other, and with one server killed the other keeps serving. A wrong
// password is refused at start, naming the setting.
func TestExternalSQLDatastores(t *testing.T) {
	for _, kind := range []string{"postgres", "mysql"} {
		t.Run(kind, func(t *testing.T) {
			c := harness.NewCluster(t, "")
			var db *harness.Database
			if kind == "postgres" {
				db = harness.StartPostgres(t, c.Server, c.Network.Subnet)
			} else {
				db = harness.StartMariaDB(t, c.Server)
			}
			spec := fmt.Sprintf("  storage:\n    type: %s\n    dataSource: %q\n", kind, db.DSN)
			first, second := c.Server, c.NewNode(spec)
			first.WriteConfig("", spec)

			// A wrong password: a clear error at start, nothing served.
			bad := filepath.Join(t.TempDir(), "bad.yaml")
			if err := os.WriteFile(bad, []byte(fmt.Sprintf("apiVersion: monokube.io/v1beta1\nkind: ClusterConfig\nspec:\n  storage:\n    type: %s\n    dataSource: %q\n", kind, db.BadPassword)), 0o600); err != nil {
				t.Fatal(err)
			}
			began := time.Now()
			out, err := second.InNode(second.Bin, "server", "--data-dir", filepath.Join(t.TempDir(), "bad"), "--config", bad)
			if err == nil || !strings.Contains(out, "spec.storage.dataSource") || strings.Contains(out, "wrong@") {
				t.Fatalf("server with a wrong database password: err %v; want an error naming spec.storage.dataSource without the password:\n%s", err, lastLines(out, 5))
			}
			t.Logf("wrong password refused after %s: %s", time.Since(began).Round(time.Millisecond), lastLines(out, 1))

			first.StartServer()
			first.WaitReady(3 * time.Minute)
			second.StartServer("--token", first.ControllerToken())
			second.WaitReady(3 * time.Minute)

			first.MustKubectl("create", "configmap", "from-first", "--from-literal=k=v")
			if got := second.MustKubectl("get", "configmap", "from-first", "-o", "jsonpath={.data.k}"); got != "v" {
				t.Fatalf("second server reads %q for a ConfigMap written through the first", got)
			}
			first.Kill()
			second.MustKubectl("create", "configmap", "after-kill", "--from-literal=k=w")
			harness.Poll(t, 30*time.Second, "objects through the surviving server", func(context.Context) (bool, error) {
				out, err := second.Kubectl("get", "configmap", "from-first", "after-kill", "-o", "name")
				return err == nil && strings.Count(out, "configmap/") == 2, nil
			})
		})
	}
}
