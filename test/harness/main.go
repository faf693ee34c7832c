package harness

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/monokube/monokube/internal/cgroups"
)

// Main runs a test package (call it from TestMain) and then fails the
// package when its tests left anything of theirs on the machine: network
// namespaces or /run/mk entries of their networks, mounts under their data
// dirs or /run/mk, their cgroup roots, or a process they started. Only what
// this process created is checked, so suites running side by side do not
// see each other's nodes. It also removes the machine directories Node
// creates as mount points (/var/lib/monokube, ...) when they did not exist
// before.
//
// Every monokube it starts unpacks its payload as a user's does: root's
// into <data-dir>/payload. Sharing one unpack between tests
// (MONOKUBE_PAYLOAD_DIR) once hid a restore that failed for every user;
// only a suite that says why calls SharePayload.
func Main(m *testing.M) {
	if why := diskShortage(os.TempDir()); why != "" {
		fmt.Fprintln(os.Stderr, "FAIL: "+why)
		os.Exit(1)
	}
	var created []string
	for _, dir := range privateDirs {
		if _, err := os.Stat(dir); os.IsNotExist(err) {
			created = append(created, dir)
		}
	}
	code := m.Run()
	// Every node is gone: no mount namespace holds these any more. Remove
	// only empty ones, deepest first.
	for i := len(created) - 1; i >= 0; i-- {
		_ = os.Remove(created[i])
	}
	if leaks := Leaks(); len(leaks) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: the tests left these behind:\n  %s\n", strings.Join(leaks, "\n  "))
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// SharePayload makes every monokube this process starts unpack its
// payload (package payload) once into one directory, rather than once per
// data dir, and removes what builds older than a day unpacked there. For
// suites that measure something else than a first run (benchmarks of
// starts); never for tests of what users run.
func SharePayload() {
	if os.Getenv("MONOKUBE_PAYLOAD_DIR") != "" {
		return
	}
	dir := filepath.Join(os.TempDir(), "monokube-test-payload")
	if entries, err := os.ReadDir(dir); err == nil {
		for _, entry := range entries {
			if info, err := entry.Info(); err == nil && entry.IsDir() && time.Since(info.ModTime()) > 24*time.Hour {
				_ = os.RemoveAll(filepath.Join(dir, entry.Name()))
			}
		}
	}
	_ = os.Setenv("MONOKUBE_PAYLOAD_DIR", dir)
}

// made is what this process's tests created on the machine.
var made struct {
	sync.Mutex
	networks    []string
	dataDirs    []string
	cgroupRoots []string
	processes   []process
}

// process is a process a test started, known by its PID and its start
// time: PIDs wrap around (pid_max is 32768 here) during a suite, and a PID
// alone may name some other process by the end.
type process struct {
	pid   int
	start string
}

// startTime is field 22 of /proc/PID/stat (clock ticks after boot), or ""
// for a process that is gone or a zombie.
func startTime(pid int) string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	stat := string(raw)
	fields := strings.Fields(stat[strings.LastIndexByte(stat, ')')+1:])
	// fields[0] is the state (field 3), so field 22 is fields[19].
	if len(fields) < 20 || fields[0] == "Z" {
		return ""
	}
	return fields[19]
}

func remember(list *[]string, value string) {
	made.Lock()
	defer made.Unlock()
	*list = append(*list, value)
}

// RegisterCgroupRoot adds a cgroup root a test made itself to what Main
// checks is gone at the end.
func RegisterCgroupRoot(root string) { remember(&made.cgroupRoots, root) }

func rememberProcess(pid int) {
	start := startTime(pid)
	made.Lock()
	defer made.Unlock()
	made.processes = append(made.processes, process{pid, start})
}

// Leaks lists what this process's tests left on the machine.
func Leaks() []string {
	made.Lock()
	defer made.Unlock()
	var leaks []string
	namespaces, _ := exec.Command("ip", "netns", "list").Output()
	for _, id := range made.networks {
		for _, line := range strings.Split(string(namespaces), "\n") {
			if name := strings.Fields(line + " x")[0]; strings.HasPrefix(name, "mk"+id) {
				leaks = append(leaks, "network namespace "+name)
			}
		}
		if _, err := os.Stat(filepath.Join("/run/mk", id)); err == nil {
			leaks = append(leaks, "/run/mk/"+id)
		}
	}
	if file, err := os.Open("/proc/self/mountinfo"); err == nil {
		scanner := bufio.NewScanner(file)
		for scanner.Scan() {
			fields := strings.Fields(scanner.Text())
			if len(fields) < 5 {
				continue
			}
			for _, dir := range append(append([]string{}, made.dataDirs...), prefixed("/run/mk/", made.networks)...) {
				if target := fields[4]; target == dir || strings.HasPrefix(target, dir+"/") {
					leaks = append(leaks, "mount "+target)
				}
			}
		}
		file.Close()
	}
	hierarchy := "/sys/fs/cgroup/memory"
	if cgroups.Detect() == cgroups.V2 {
		hierarchy = "/sys/fs/cgroup"
	}
	for _, root := range made.cgroupRoots {
		if _, err := os.Stat(filepath.Join(hierarchy, root)); err == nil {
			leaks = append(leaks, "cgroup "+root)
		}
	}
	for _, p := range made.processes {
		// A zombie is gone for every purpose but its exit status.
		if now := startTime(p.pid); now != "" && now == p.start {
			leaks = append(leaks, fmt.Sprintf("process %d", p.pid))
		}
	}
	return leaks
}

func prefixed(prefix string, values []string) []string {
	out := make([]string, len(values))
	for i, value := range values {
		out[i] = prefix + value
	}
	return out
}
