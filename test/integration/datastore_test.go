package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/monokube/monokube/test/harness"
)

// etcdSpec is embedded etcd on free loopback ports, so tests can run side
// by side on one machine.
func etcdSpec(t *testing.T) string {
	return fmt.Sprintf("  storage:\n    type: etcd\n    etcd:\n      clientPort: %d\n      peerPort: %d\n", harness.FreePort(t), harness.FreePort(t))
}

func createConfigMaps(t *testing.T, s *harness.Server, prefix string, count int) {
	t.Helper()
	client := s.Client()
	for i := range count {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", prefix, i)}, Data: map[string]string{"i": fmt.Sprint(i)}}
		if _, err := client.CoreV1().ConfigMaps("default").Create(context.Background(), cm, metav1.CreateOptions{}); err != nil {
			t.Fatalf("create %s: %v", cm.Name, err)
		}
	}
}

func countConfigMaps(t *testing.T, s *harness.Server, prefix string) int {
	t.Helper()
	list, err := s.Client().CoreV1().ConfigMaps("default").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, cm := range list.Items {
		if strings.HasPrefix(cm.Name, prefix+"-") {
			n++
		}
	}
	return n
}

// TestBackupAndRestore backs a running server up while writes go on,
// restores the archive into a new data dir and checks the objects, an
// encrypted Secret and the CA; damaged archives and non-empty data dirs
// are refused with nothing written.
func TestBackupAndRestore(t *testing.T) {
	for _, kind := range []string{"sqlite", "etcd"} {
		t.Run(kind, func(t *testing.T) {
			spec := ""
			if kind == "etcd" {
				spec = etcdSpec(t)
			}
			source := harness.NewServer(t, "")
			source.WriteConfig("    encryptionAtRest: true\n", spec)
			source.StartReady()
			createConfigMaps(t, source, "before", 50)
			source.MustKubectl("create", "secret", "generic", "kept", "--from-literal=password=hunter2")

			// Writes go on while the backup is taken.
			var writes sync.WaitGroup
			writes.Add(1)
			go func() { defer writes.Done(); createConfigMaps(t, source, "during", 30) }()
			saveDir := t.TempDir()
			began := time.Now()
			// Only --data-dir: the server recorded its --config and datastore.
			stdout, stderr, err := source.Run("backup", "--save-path", saveDir)
			if err != nil {
				t.Fatalf("backup: %v\n%s", err, stderr)
			}
			archive := strings.TrimSpace(stdout)
			t.Logf("backup took %s: %s", time.Since(began).Round(time.Millisecond), archive)
			if filepath.Dir(archive) != saveDir {
				t.Fatalf("backup printed %q, want a file in %s", archive, saveDir)
			}
			writes.Wait()
			source.Kill()

			// Refusals first: nothing may be written.
			garbled := filepath.Join(t.TempDir(), "garbled.tar.gz")
			raw, err := os.ReadFile(archive)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(garbled, raw[:len(raw)/2], 0o600); err != nil {
				t.Fatal(err)
			}
			target := harness.NewServer(t, "")
			target.WriteConfig("    encryptionAtRest: true\n", spec)
			for _, bad := range []string{garbled, "/etc/hostname"} {
				if _, stderr, err := target.Run("restore", bad); err == nil || !strings.Contains(stderr, bad) {
					t.Fatalf("restore %s: err %v, want a refusal naming the file\n%s", bad, err, stderr)
				}
				// The launcher's unpack is the only thing there.
				if entries, _ := os.ReadDir(target.DataDir); len(entries) != 1 || entries[0].Name() != "payload" {
					t.Fatalf("a refused restore left %v in %s", entries, target.DataDir)
				}
			}
			if _, stderr, err := source.Run("restore", archive); err == nil || !strings.Contains(stderr, "not empty") {
				t.Fatalf("restore into a used data dir: err %v, want a refusal\n%s", err, stderr)
			}

			began = time.Now()
			if _, stderr, err := target.Run("restore", archive); err != nil {
				t.Fatalf("restore: %v\n%s", err, stderr)
			}
			t.Logf("restore took %s", time.Since(began).Round(time.Millisecond))
			target.StartReady()
			if n := countConfigMaps(t, target, "before"); n != 50 {
				t.Fatalf("restored server has %d of the 50 ConfigMaps written before the backup", n)
			}
			if got := target.MustKubectl("get", "secret", "kept", "-o", "jsonpath={.data.password}"); got != "aHVudGVyMg==" {
				t.Fatalf("restored Secret reads %q", got)
			}
			for _, file := range []string{"ca.crt", "sa.pub", "encryption-config.yaml"} {
				a, _ := os.ReadFile(filepath.Join(source.DataDir, "pki", file))
				b, _ := os.ReadFile(filepath.Join(target.DataDir, "pki", file))
				if len(a) == 0 || !bytes.Equal(a, b) {
					t.Fatalf("restored %s differs from the original", file)
				}
			}
		})
	}
}

// TestSQLiteMigratesToEtcd switches a SQLite server's config to etcd: the
// next start carries every object over and sets the old database aside.
func TestSQLiteMigratesToEtcd(t *testing.T) {
	s := harness.NewServer(t, "")
	s.StartReady()
	createConfigMaps(t, s, "kept", 100)
	if _, _, err := s.Terminate(time.Minute); err != nil {
		t.Fatal(err)
	}
	s.WriteConfig("", etcdSpec(t))
	s.StartReady()
	if n := countConfigMaps(t, s, "kept"); n != 100 {
		t.Fatalf("after migration %d of 100 ConfigMaps are left", n)
	}
	if !strings.Contains(s.Log(), "Migrated the SQLite datastore into etcd") {
		t.Fatal("no migration in the log")
	}
	old, _ := filepath.Glob(filepath.Join(s.DataDir, "db", "state.db.migrated-*"))
	if _, err := os.Stat(filepath.Join(s.DataDir, "db", "state.db")); !os.IsNotExist(err) || len(old) != 1 {
		t.Fatalf("the SQLite file was not set aside: %v, %v", err, old)
	}
	out, stderr, err := s.Run("etcd", "member-list")
	if err != nil || !strings.Contains(out, "voter") {
		t.Fatalf("etcd member-list: %v\n%s%s", err, out, stderr)
	}
}

// TestServerJoinRefusesBadTokens: a server only joins with a live
// controller token and a shared datastore, and says what is wrong otherwise.
func TestServerJoinRefusesBadTokens(t *testing.T) {
	first := harness.NewServer(t, etcdSpec(t))
	first.StartReady()
	stdout, stderr, err := first.Run("token", "create", "--role=controller", "--expiry=1s")
	if err != nil {
		t.Fatalf("token create: %v\n%s", err, stderr)
	}
	expired := strings.TrimSpace(stdout)
	time.Sleep(1500 * time.Millisecond)
	second := harness.NewServer(t, etcdSpec(t))
	cases := map[string]string{expired: "expired", "MK1.garbage": "not a valid monokube join token"}
	for token, want := range cases {
		_, stderr, err := second.Run("server", "--config", second.ConfigPath, "--token", token)
		if err == nil || !strings.Contains(stderr, want) {
			t.Fatalf("server --token %.20s…: err %v, want %q\n%s", token, err, want, stderr)
		}
	}
	sqlite := harness.NewServer(t, "")
	if _, stderr, err := sqlite.Run("server", "--config", sqlite.ConfigPath, "--token", expired); err == nil || !strings.Contains(stderr, "spec.storage.type") {
		t.Fatalf("joining on sqlite: err %v, want a refusal naming spec.storage.type\n%s", err, stderr)
	}
}

// TestExternalEtcd runs a server on an etcd it does not own: another
// server's embedded member, reached with that member's client certificate
// and a key prefix of its own. A certificate etcd does not trust is an
// error at start naming the setting.
func TestExternalEtcd(t *testing.T) {
	owner := harness.NewServer(t, "")
	clientPort := harness.FreePort(t)
	owner.WriteConfig("", fmt.Sprintf("  storage:\n    type: etcd\n    etcd:\n      clientPort: %d\n      peerPort: %d\n", clientPort, harness.FreePort(t)))
	owner.StartReady()

	pkiDir := filepath.Join(owner.DataDir, "pki")
	external := func(cert, key string) string {
		return fmt.Sprintf(`  storage:
    type: etcd
    etcd:
      endpoints: ["https://127.0.0.1:%d"]
    tls:
      caFile: %s
      certFile: %s
      keyFile: %s
`, clientPort, filepath.Join(pkiDir, "etcd", "ca.crt"), cert, key)
	}
	user := harness.NewServer(t, "")
	// A certificate from the cluster CA, not etcd's: refused.
	user.WriteConfig("", external(filepath.Join(pkiDir, "admin.crt"), filepath.Join(pkiDir, "admin.key")))
	user.Start()
	if code, err := user.WaitExit(90 * time.Second); code == 0 || err != nil || !strings.Contains(user.Log(), "spec.storage.etcd.endpoints") {
		t.Fatalf("server with an untrusted etcd certificate: exit %d, %v; want a failure naming spec.storage.etcd.endpoints\n%s", code, err, user.Log())
	}
	if i := strings.LastIndex(user.Log(), "Error: "); i >= 0 {
		t.Logf("refused: %s", strings.TrimSpace(user.Log()[i:]))
	}

	// Beside the owner on this machine: the health ports must differ.
	sideBySide := "  controllerManager:\n    extraArgs: {secure-port: \"0\"}\n  scheduler:\n    extraArgs: {secure-port: \"0\"}\n"
	user.WriteConfig("    extraArgs:\n      etcd-prefix: /external-test\n", external(filepath.Join(pkiDir, "etcd", "client.crt"), filepath.Join(pkiDir, "etcd", "client.key"))+sideBySide)
	user.StartReady()
	user.MustKubectl("create", "configmap", "on-external-etcd")
	if _, err := owner.Kubectl("get", "configmap", "on-external-etcd"); err == nil {
		t.Fatal("the prefix did not separate the two servers' objects")
	}
}
