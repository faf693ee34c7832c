package scale

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times (100 on
// every Linux architecture monokube builds for).
const clockTicks = 100

// monitor samples a process's resident memory and CPU time.
type monitor struct {
	pid      int
	mu       sync.Mutex
	maxRSS   float64 // MiB
	began    time.Time
	cpuBegan float64 // seconds
	stop     context.CancelFunc
	done     chan struct{}
}

func watchProcess(pid int) *monitor {
	ctx, cancel := context.WithCancel(context.Background())
	m := &monitor{pid: pid, began: time.Now(), stop: cancel, done: make(chan struct{})}
	m.cpuBegan, _ = cpuSeconds(pid)
	go func() {
		defer close(m.done)
		ticker := time.NewTicker(time.Second)
		defer ticker.Stop()
		for {
			if rss, err := rssMiB(pid); err == nil {
				m.mu.Lock()
				m.maxRSS = max(m.maxRSS, rss)
				m.mu.Unlock()
			}
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
		}
	}()
	return m
}

// finish stops sampling: the highest RSS seen and the CPU used per
// second of wall time since the start (cores).
func (m *monitor) finish() (maxRSS, cpuCores float64) {
	m.stop()
	<-m.done
	cpu, _ := cpuSeconds(m.pid)
	return m.maxRSS, (cpu - m.cpuBegan) / time.Since(m.began).Seconds()
}

func rssMiB(pid int) (float64, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if fields := strings.Fields(line); len(fields) >= 2 && fields[0] == "VmRSS:" {
			kib, err := strconv.Atoi(fields[1])
			return float64(kib) / 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// cpuSeconds is the process's user and system time.
func cpuSeconds(pid int) (float64, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces: fields count from after its ')'.
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / clockTicks, nil
}

// dirMiB is the size of the files under dir.
func dirMiB(dir string) float64 {
	var total int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return float64(total) / (1 << 20)
}
