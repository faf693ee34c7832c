package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/monokube/monokube/internal/images"
	"github.com/monokube/monokube/test/harness"
)

type imageImportReport struct {
	ArchiveMiB         int       `json:"archive_mib"`
	Archives           int       `json:"archives"`
	ColdReadyWith      durations `json:"cold_start_to_node_ready_with_archives"`
	ColdReadyWithout   durations `json:"cold_start_to_node_ready_without"`
	ArchivesImportedMS float64   `json:"cold_start_to_archives_imported_ms"`
	WarmReadyWith      durations `json:"warm_restart_to_node_ready_with_archives"`
	WarmReadyWithout   durations `json:"warm_restart_to_node_ready_without"`
}

// TestImageImportNumbers measures what image archives in <data-dir>/images
// cost a node's start: start → Node Ready of a fresh node with
// MONOKUBE_BENCH_ARCHIVE_MIB (default 1024) of archives in four images of
// random content and of one without, then MONOKUBE_BENCH_RUNS (default 3)
// warm restarts of each. The archives are imported once and recorded, so a
// warm restart should cost about what one without archives does.
func TestImageImportNumbers(t *testing.T) {
	if envInt("MONOKUBE_BENCH", 0) == 0 {
		t.Skip("set MONOKUBE_BENCH=1 (or run `make bench`)")
	}
	total := envInt("MONOKUBE_BENCH_ARCHIVE_MIB", 1024)
	runs := envInt("MONOKUBE_BENCH_RUNS", 3)
	const archives = 4
	report := imageImportReport{ArchiveMiB: total, Archives: archives}
	network := harness.NewNetwork(t)

	plain := harness.NewNode(t, network, 1, "")
	loaded := harness.NewNode(t, network, 2, "")
	for i := range archives {
		writeRandomImage(t, fmt.Sprintf("bench.monokube.io/random:%d", i),
			filepath.Join(loaded.DataDir, "images", fmt.Sprintf("random-%d.tar", i)), int64(total/archives)<<20)
	}
	for _, c := range []struct {
		node       *harness.Node
		cold, warm *durations
	}{{plain, &report.ColdReadyWithout, &report.WarmReadyWithout}, {loaded, &report.ColdReadyWith, &report.WarmReadyWith}} {
		began := time.Now()
		c.node.Start()
		cold := []time.Duration{nodeReadyAfter(t, c.node, began)}
		if c.node == loaded {
			harness.Poll(t, 10*time.Minute, "archives imported", func(context.Context) (bool, error) {
				return strings.Contains(c.node.Log(), `"Image archives imported"`), nil
			})
			report.ArchivesImportedMS = float64(time.Since(began).Milliseconds())
		}
		var warm []time.Duration
		for range runs {
			c.node.Kill()
			began := time.Now()
			c.node.Start()
			warm = append(warm, nodeReadyAfter(t, c.node, began))
		}
		c.node.Kill()
		*c.cold, *c.warm = summarize(cold), summarize(warm)
	}
	out, _ := json.MarshalIndent(report, "", "  ")
	fmt.Println(string(out))
}

// nodeReadyAfter waits for node's Node to be Ready with a heartbeat newer
// than began (a restarted node's old Ready condition does not count).
func nodeReadyAfter(t *testing.T, node *harness.Node, began time.Time) time.Duration {
	t.Helper()
	node.WaitReady(5 * time.Minute)
	client := node.Client()
	harness.Poll(t, 5*time.Minute, "node Ready", func(ctx context.Context) (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
		if err != nil || !isReady(n) {
			return false, nil
		}
		for _, c := range n.Status.Conditions {
			if c.Type == "Ready" && c.LastHeartbeatTime.Time.After(began.Add(-time.Second)) {
				return true, nil
			}
		}
		return false, nil
	})
	return time.Since(began)
}

// writeRandomImage writes an image whose one layer is a file of size
// random (incompressible) bytes, as a docker-archive at path.
func writeRandomImage(t *testing.T, reference, path string, size int64) {
	t.Helper()
	rootfs := t.TempDir()
	file, err := os.Create(filepath.Join(rootfs, "data"))
	if err != nil {
		t.Fatal(err)
	}
	source := rand.NewChaCha8([32]byte{byte(len(reference)), reference[len(reference)-1]})
	if _, err := io.CopyN(file, source, size); err != nil {
		t.Fatal(err)
	}
	if err := file.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := images.WriteArchive(path, images.Spec{Reference: reference, RootFS: rootfs}); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(rootfs); err != nil {
		t.Fatal(err)
	}
}
