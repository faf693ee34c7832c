// Package bench measures what monokube promises about start time, memory
// and size. It prints numbers as JSON and asserts nothing about them.
//
//	make bench            # or: MONOKUBE_BENCH=1 go test ./bench -run TestStartupNumbers -v
package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/monokube/monokube/test/harness"
)

type durations struct {
	MedianMS float64 `json:"median_ms"`
	MinMS    float64 `json:"min_ms"`
	MaxMS    float64 `json:"max_ms"`
	Runs     int     `json:"runs"`
}

type startupReport struct {
	ColdStartToReadyz  durations `json:"cold_start_to_readyz"`
	WarmRestartToReady durations `json:"warm_restart_to_readyz"`
	IdleRSSMiB         float64   `json:"idle_rss_mib"`
	IdleAfterSeconds   int       `json:"idle_after_seconds"`
	BinaryMiB          float64   `json:"binary_mib"`
}

// TestStartupNumbers starts fresh servers N times (MONOKUBE_BENCH_RUNS,
// default 5), restarts the last one N times on its data dir, then measures
// RSS after MONOKUBE_BENCH_IDLE seconds (default 60) of idling.
func TestStartupNumbers(t *testing.T) {
	if os.Getenv("MONOKUBE_BENCH") == "" {
		t.Skip("set MONOKUBE_BENCH=1 (or run `make bench`)")
	}
	runs := envInt("MONOKUBE_BENCH_RUNS", 5)
	idle := envInt("MONOKUBE_BENCH_IDLE", 60)
	var report startupReport

	var cold, warm []time.Duration
	var server *harness.Server
	for range runs {
		server = harness.NewServer(t, "")
		cold = append(cold, timeToReady(server))
		server.Kill()
	}
	for range runs {
		warm = append(warm, timeToReady(server))
		server.Kill()
	}
	report.ColdStartToReadyz = summarize(cold)
	report.WarmRestartToReady = summarize(warm)

	server.StartReady()
	time.Sleep(time.Duration(idle) * time.Second)
	report.IdleRSSMiB = rssMiB(t, server.PID())
	report.IdleAfterSeconds = idle
	if info, err := os.Stat(server.Bin); err == nil {
		report.BinaryMiB = float64(info.Size()) / (1 << 20)
	}
	out, _ := json.MarshalIndent(report, "", "  ")
	fmt.Println(string(out))
}

func timeToReady(server *harness.Server) time.Duration {
	began := time.Now()
	server.StartReady()
	return time.Since(began)
}

func summarize(samples []time.Duration) durations {
	slices.Sort(samples)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return durations{
		MedianMS: ms(samples[len(samples)/2]),
		MinMS:    ms(samples[0]),
		MaxMS:    ms(samples[len(samples)-1]),
		Runs:     len(samples),
	}
}

func rssMiB(t *testing.T, pid int) float64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	var rss float64
	for _, line := range strings.Split(string(status), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		kib, _ := strconv.Atoi(fields[1])
		switch fields[0] {
		case "VmRSS:":
			rss = float64(kib) / 1024
		case "RssAnon:", "RssFile:":
			// Anonymous memory is the heap and stacks; file pages are the
			// binary's code and data, shared with other processes of it.
			t.Logf("%s %.1f MiB", fields[0], float64(kib)/1024)
		}
	}
	if rss > 0 {
		logMemoryMap(t, pid)
		return rss
	}
	t.Fatal("no VmRSS")
	return 0
}

func envInt(name string, fallback int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return fallback
}
