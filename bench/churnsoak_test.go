package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/monokube/monokube/test/harness"
)

// soakGracePeriod makes the soak's deletes a user's: graceful, not forced.
// Forced deletes (grace 0) make the kubelet log thousands of errors about
// pods already gone from the API (TestPodChurnNumbers uses them, for speed).
const soakGracePeriod = 5

type churnSoakReport struct {
	Minutes          int            `json:"minutes"`
	PodsPerBatch     int            `json:"pods_per_batch"`
	Batches          int            `json:"batches"`
	StartupP50MS     float64        `json:"pod_startup_p50_ms"`
	StartupP99MS     float64        `json:"pod_startup_p99_ms"`
	StartupMaxMS     float64        `json:"pod_startup_max_ms"`
	PodsOver5s       int            `json:"pods_over_5s"`
	RSSMiBStart      float64        `json:"rss_mib_start"`
	RSSMiBEnd        float64        `json:"rss_mib_end"`
	RSSGrowthPercent float64        `json:"rss_growth_percent"`
	RSSMiBByMinute   map[int]int    `json:"rss_mib_by_minute"`
	DBMiBStart       float64        `json:"state_db_mib_start"`
	DBMiBEnd         float64        `json:"state_db_mib_end"`
	DBMiBByMinute    map[int]string `json:"state_db_and_wal_mib_by_minute"`
	EventsAtEnd      int            `json:"events_at_end"`
	ErrorLines       int            `json:"log_error_lines"`
	ErrorsByMessage  map[string]int `json:"log_errors_by_message,omitempty"`
}

// TestPodChurnSoak creates and deletes batches of MONOKUBE_SOAK_BATCH pods
// (default 20) on a single `server --enable-worker` node for
// MONOKUBE_SOAK_MINUTES (default 30). It reports RSS and the size of the
// SQLite datastore (with its WAL) after the first batch and at the end,
// each after MONOKUBE_SOAK_SETTLE seconds (default 30) without churn, and
// the error lines the node logged in between.
func TestPodChurnSoak(t *testing.T) {
	if envInt("MONOKUBE_BENCH", 0) == 0 {
		t.Skip("set MONOKUBE_BENCH=1 (or run `make bench`)")
	}
	minutes := envInt("MONOKUBE_SOAK_MINUTES", 30)
	batchSize := envInt("MONOKUBE_SOAK_BATCH", 20)
	settle := time.Duration(envInt("MONOKUBE_SOAK_SETTLE", 30)) * time.Second
	// MONOKUBE_SOAK_HEAP_PROFILE=dir saves the process's heap profile
	// after the first batch and at the end, for `go tool pprof -base`.
	// The API server serves the process's /debug/pprof once profiling is on.
	profiles := os.Getenv("MONOKUBE_SOAK_HEAP_PROFILE")
	apiExtra := ""
	if profiles != "" {
		apiExtra = "    extraArgs: {profiling: \"true\"}\n"
	}
	node, client := churnNode(t, apiExtra)
	report := churnSoakReport{Minutes: minutes, PodsPerBatch: batchSize, RSSMiBByMinute: map[int]int{}, DBMiBByMinute: map[int]string{}}

	runPodBatch(t, client, "soak", batchSize, soakGracePeriod) // the first batch warms caches
	time.Sleep(settle)
	report.RSSMiBStart = rssMiB(t, node.PID())
	report.DBMiBStart = datastoreMiB(t, node)
	saveHeapProfile(t, client, profiles, "heap-start.pb.gz")
	logStart := len(node.Log())

	began := time.Now()
	var startup []time.Duration
	for time.Since(began) < time.Duration(minutes)*time.Minute {
		batch := runPodBatch(t, client, "soak", batchSize, soakGracePeriod)
		startup = append(startup, batch.startup...)
		report.Batches++
		minute := int(time.Since(began).Minutes())
		if _, seen := report.RSSMiBByMinute[minute]; !seen && minute%5 == 0 {
			report.RSSMiBByMinute[minute] = int(rssMiB(t, node.PID()))
			report.DBMiBByMinute[minute] = fmt.Sprintf("%.1f + %.1f", fileMiB(node, "state.db"), fileMiB(node, "state.db-wal"))
		}
	}
	time.Sleep(settle)
	report.RSSMiBEnd = rssMiB(t, node.PID())
	report.RSSGrowthPercent = 100 * (report.RSSMiBEnd - report.RSSMiBStart) / report.RSSMiBStart
	report.DBMiBEnd = datastoreMiB(t, node)
	saveHeapProfile(t, client, profiles, "heap-end.pb.gz")
	slices.Sort(startup)
	report.StartupP50MS, report.StartupP99MS, report.StartupMaxMS = percentiles(startup)
	report.PodsOver5s = overSLO(startup)
	log := node.Log()[logStart:]
	report.ErrorLines, report.ErrorsByMessage = logErrors(log)
	if events, err := client.CoreV1().Events("").List(context.Background(), metav1.ListOptions{}); err == nil {
		report.EventsAtEnd = len(events.Items)
	}
	if dir := os.Getenv("MONOKUBE_SOAK_KEEP_DB"); dir != "" {
		// For a look at kine's table afterwards (sqlite3 state.db).
		for _, name := range []string{"state.db", "state.db-wal"} {
			if raw, err := os.ReadFile(filepath.Join(node.DataDir, "db", name)); err == nil {
				_ = os.WriteFile(filepath.Join(dir, name), raw, 0o600)
			}
		}
	}
	out, _ := json.MarshalIndent(report, "", "  ")
	fmt.Println(string(out))
}

// datastoreMiB is the size of the SQLite database with its write-ahead log.
func datastoreMiB(t *testing.T, node *harness.Node) float64 {
	t.Helper()
	return fileMiB(node, "state.db") + fileMiB(node, "state.db-wal")
}

func fileMiB(node *harness.Node, name string) float64 {
	info, err := os.Stat(filepath.Join(node.DataDir, "db", name))
	if err != nil {
		return 0
	}
	return float64(info.Size()) / (1 << 20)
}

// saveHeapProfile writes the node process's heap profile to dir/name, if
// dir is set.
func saveHeapProfile(t *testing.T, client kubernetes.Interface, dir, name string) {
	t.Helper()
	if dir == "" {
		return
	}
	raw, err := client.CoreV1().RESTClient().Get().AbsPath("/debug/pprof/heap").DoRaw(context.Background())
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, name), raw, 0o644)
	}
	if err != nil {
		t.Errorf("heap profile: %v", err)
	}
}

var (
	// klog's error lines ("E1130 12:00:00.000000 1234 file.go:12] msg")
	// and logrus's (containerd, kine, flannel).
	klogError   = regexp.MustCompile(`^E\d{4} [\d:.]+\s+\d+ [^\]]+\] (.*)$`)
	logrusError = regexp.MustCompile(`level=error msg="([^"]*)"`)
	// Container IDs, pod UIDs and the soak's pod numbers, so that one kind
	// of message is counted as one.
	varyingParts = regexp.MustCompile(`[0-9a-f]{12,}|[0-9a-f]{8}-[0-9a-f-]{27}|soak-\d+`)
)

// logErrors counts error lines and groups them by their first 80
// characters of message, so a report shows what they were.
func logErrors(log string) (int, map[string]int) {
	byMessage := map[string]int{}
	total := 0
	for _, line := range strings.Split(log, "\n") {
		var message string
		if m := klogError.FindStringSubmatch(line); m != nil {
			message = m[1]
		} else if m := logrusError.FindStringSubmatch(line); m != nil {
			message = m[1]
		} else {
			continue
		}
		total++
		message = varyingParts.ReplaceAllString(message, "…")
		if len(message) > 80 {
			message = message[:80]
		}
		byMessage[message]++
	}
	return total, byMessage
}
