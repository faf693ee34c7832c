package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/monokube/monokube/test/harness"
)

// TestDatastoreDiskFullFailsClearlyAndRecovers runs a server whose data dir
// is a small tmpfs (just over the 1 GiB a start demands and the payload
// the launcher unpacks there) and fills it:
// writes are refused with the reason (controlplane.diskGuard), the
// acknowledged ones stay, state.db passes SQLite's integrity check, and
// once space returns the same server takes writes again.
func TestDatastoreDiskFullFailsClearlyAndRecovers(t *testing.T) {
	server := harness.NewServer(t, "")
	server.SmallDataDir("1700m")
	server.StartReady()
	server.MustKubectl("create", "namespace", "full")
	server.MustKubectl("-n", "full", "create", "configmap", "before", "--from-literal=k=v")

	// The token asked for on the full disk below is the namespace's
	// default service account's, which the cluster creates shortly after
	// the namespace.
	harness.Poll(t, time.Minute, "the default service account of namespace full", func(ctx context.Context) (bool, error) {
		_, err := server.Client().CoreV1().ServiceAccounts("full").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	filler := filepath.Join(server.DataDir, "filler")
	harness.FillDisk(t, filler)
	// Without the guard SQLite first reuses the space its WAL file already
	// has, then acknowledged writes were lost: write until refused.
	client := server.Client()
	value := strings.Repeat("x", 256<<10)
	var failure error
	acknowledged := 0
	began := time.Now()
	for i := range 1000 {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("full-%03d", i)}, Data: map[string]string{"k": value}}
		if _, err := client.CoreV1().ConfigMaps("full").Create(context.Background(), cm, metav1.CreateOptions{}); err != nil {
			failure = err
			break
		}
		acknowledged++
		if i%50 == 0 {
			var st syscall.Statfs_t
			_ = syscall.Statfs(server.DataDir, &st)
			t.Logf("%d writes acknowledged after %s; %d KiB free", acknowledged, time.Since(began).Round(time.Millisecond), st.Bavail*uint64(st.Bsize)/1024)
		}
	}
	if failure == nil {
		t.Fatal("1000 writes of 256 KiB succeeded on a full disk: the test proves nothing")
	}
	if !strings.Contains(failure.Error(), "the datastore's disk is full") || acknowledged > 0 {
		t.Errorf("%d writes acknowledged on a full disk; the refusal: %v", acknowledged, failure)
	}
	t.Logf("write on a full disk: %v", failure)
	// What stores nothing still works: the server's own controllers need
	// service-account tokens, and a dry run writes nothing.
	if out, err := server.Kubectl("-n", "full", "create", "token", "default"); err != nil {
		t.Errorf("a service-account token on a full disk: %v\n%s", err, out)
	}
	if out, err := server.Kubectl("-n", "full", "create", "configmap", "dry", "--dry-run=server", "--from-literal=k=v"); err != nil {
		t.Errorf("a server-side dry run on a full disk: %v\n%s", err, out)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	harness.Poll(t, time.Minute, "a write after space returned", func(context.Context) (bool, error) {
		_, err := server.Kubectl("-n", "full", "create", "configmap", "after", "--from-literal=k=v")
		return err == nil, nil
	})
	if _, err := client.CoreV1().ConfigMaps("full").Get(context.Background(), "before", metav1.GetOptions{}); err != nil {
		t.Errorf("a write acknowledged before the disk filled is gone: %v", err)
	}
	if code, _, err := server.Terminate(30 * time.Second); err != nil || code != 0 {
		t.Errorf("stop after the disk-full episode: code %d, %v\n%s", code, err, harness.GrepLines(server.Log(), "rror"))
	}
	server.CheckSQLiteIntegrity()
}
