package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/monokube/monokube/test/harness"
)

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
	node, client := churnNode(t)
	report := churnSoakReport{Minutes: minutes, PodsPerBatch: batchSize, RSSMiBByMinute: map[int]int{}}

	runPodBatch(t, client, "soak", batchSize) // the first batch warms caches
	time.Sleep(settle)
	report.RSSMiBStart = rssMiB(t, node.PID())
	report.DBMiBStart = datastoreMiB(t, node)
	logStart := len(node.Log())

	began := time.Now()
	var startup []time.Duration
	for time.Since(began) < time.Duration(minutes)*time.Minute {
		batch := runPodBatch(t, client, "soak", batchSize)
		startup = append(startup, batch.startup...)
		report.Batches++
		minute := int(time.Since(began).Minutes())
		if _, seen := report.RSSMiBByMinute[minute]; !seen && minute%5 == 0 {
			report.RSSMiBByMinute[minute] = int(rssMiB(t, node.PID()))
		}
	}
	time.Sleep(settle)
	report.RSSMiBEnd = rssMiB(t, node.PID())
	report.RSSGrowthPercent = 100 * (report.RSSMiBEnd - report.RSSMiBStart) / report.RSSMiBStart
	report.DBMiBEnd = datastoreMiB(t, node)
	slices.Sort(startup)
	report.StartupP50MS, report.StartupP99MS, report.StartupMaxMS = percentiles(startup)
	report.PodsOver5s = overSLO(startup)
	report.ErrorLines, report.ErrorsByMessage = logErrors(node.Log()[logStart:])
	out, _ := json.MarshalIndent(report, "", "  ")
	fmt.Println(string(out))
}

// datastoreMiB is the size of the SQLite database with its write-ahead log.
func datastoreMiB(t *testing.T, node *harness.Node) float64 {
	t.Helper()
	var total int64
	for _, name := range []string{"state.db", "state.db-wal"} {
		if info, err := os.Stat(node.DataDir + "/db/" + name); err == nil {
			total += info.Size()
		}
	}
	return float64(total) / (1 << 20)
}

var (
	// klog's error lines ("E1130 12:00:00.000000 1234 file.go:12] msg")
	// and logrus's (containerd, kine, flannel).
	klogError   = regexp.MustCompile(`^E\d{4} [\d:.]+\s+\d+ [^\]]+\] (.*)$`)
	logrusError = regexp.MustCompile(`level=error msg="([^"]*)"`)
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
		if len(message) > 80 {
			message = message[:80]
		}
		byMessage[message]++
	}
	return total, byMessage
}
