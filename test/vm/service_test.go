package vm

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// initSystem is how the contract asks one init system about the service.
type initSystem struct {
	name     string
	hostname string
	active   string // exits 0 when the service runs
	enabled  string // exits 0 when it starts at boot
	file     string // what install writes and uninstall removes
	// podCgroup finds the cgroup of the pod whose UID (with dashes) is %s.
	podCgroup string
}

var initSystems = []initSystem{
	{
		name: "systemd", hostname: "vm-systemd",
		active: "systemctl is-active --quiet monokube", enabled: "systemctl is-enabled --quiet monokube",
		file: "/etc/systemd/system/monokube.service",
		// The systemd cgroup driver: slices named by QoS class and pod UID.
		podCgroup: `find /sys/fs/cgroup/kubepods.slice -type d -name "kubepods-*pod$(echo %s | tr - _).slice"`,
	},
	{
		name: "openrc", hostname: "vm-openrc",
		active: "rc-service monokube status", enabled: "rc-update show default | grep -qw monokube",
		file: "/etc/init.d/monokube",
		// cgroupfs under OpenRC: kubepods/<class>/pod<uid>.
		podCgroup: `find /sys/fs/cgroup/kubepods -type d -name "pod%s"`,
	},
}

// TestServiceUnderRealInit is the service contract on a real init system
// as PID 1, on cgroup v2, in a VM: install starts a server with a worker
// and the Node gets Ready; a pod's cgroup is where the init's cgroup driver
// puts it; kill -9 of the server brings it back with the pod still running;
// a reboot brings the Node back with no command; stop, status, start and
// uninstall do what the README says. Under systemd, the unit is active only
// once the server said READY (Type=notify): /readyz answers at that moment.
func TestServiceUnderRealInit(t *testing.T) {
	images := Images(t)
	program := os.Getenv("MONOKUBE_BIN")
	if program == "" {
		t.Skip("MONOKUBE_BIN is not set")
	}
	for _, init := range initSystems {
		t.Run(init.name, func(t *testing.T) { serviceContract(t, init, filepath.Join(images, init.name), program) })
	}
}

func serviceContract(t *testing.T, init initSystem, image, program string) {
	booted := time.Now()
	g := Boot(t, Image(image).WithShare(filepath.Dir(program)))
	numbers := []string{fmt.Sprintf("boot→agent=%s", since(booted))}
	g.MustRun("install -m 0755 " + ShareMountPoint + "/" + filepath.Base(program) + " /usr/local/bin/monokube")

	installed := time.Now()
	g.MustRun("monokube install server --enable-worker")
	numbers = append(numbers, "install="+since(installed))
	g.MustRun(init.active)
	g.MustRun(init.enabled)
	if init.name == "systemd" {
		checkActiveAfterReady(t, g)
	}
	waitNodeReady(t, g, init.hostname, 30*time.Minute)
	numbers = append(numbers, "install→node-ready="+since(installed))

	podStart := time.Now()
	g.MustRun("monokube kubectl run vmtest --image=monokube.io/pause:3.10 --restart=Never")
	waitFor(t, g, 15*time.Minute, "pod vmtest Running", "monokube kubectl get pod vmtest -o jsonpath={.status.phase} | grep -qx Running")
	numbers = append(numbers, "pod-running="+since(podStart))
	uid := strings.TrimSpace(g.MustRun("monokube kubectl get pod vmtest -o jsonpath={.metadata.uid}"))
	cgroup := strings.TrimSpace(g.MustRun(fmt.Sprintf(init.podCgroup, uid)))
	if cgroup == "" {
		t.Fatalf("no cgroup for pod %s where the %s driver puts it:\n%s", uid, init.name, g.MustRun("find /sys/fs/cgroup -maxdepth 3 -type d -name '*kubepods*'"))
	}
	t.Logf("%s: pod cgroup %s", init.name, cgroup)
	containers := podProcesses(g, cgroup)

	// kill -9 of the server: the init brings it back; the pod never stops.
	pid := statusPID(t, g)
	killed := time.Now()
	g.MustRun(fmt.Sprintf("kill -9 %d", pid))
	waitFor(t, g, 15*time.Minute, "a new server process", fmt.Sprintf(`pid=$(monokube status -o json | sed -n 's/.*"pid": *\([0-9]*\).*/\1/p'); [ -n "$pid" ] && [ "$pid" != %d ]`, pid))
	waitNodeReady(t, g, init.hostname, 15*time.Minute)
	numbers = append(numbers, "kill-9→node-ready="+since(killed))
	if after := podProcesses(g, cgroup); after != containers {
		t.Errorf("the pod's processes changed across the server's restart: %q, then %q", containers, after)
	}
	if restarts := strings.TrimSpace(g.MustRun("monokube kubectl get pod vmtest -o jsonpath={.status.containerStatuses[0].restartCount}")); restarts != "0" {
		t.Errorf("the pod's container restarted %s times", restarts)
	}

	// A reboot: the init starts the service, nobody runs a command.
	rebooted := time.Now()
	if err := g.Reboot(); err != nil {
		t.Fatal(err)
	}
	waitNodeReady(t, g, init.hostname, 30*time.Minute)
	numbers = append(numbers, "reboot→node-ready="+since(rebooted))

	g.MustRun("monokube stop")
	if _, _, code, err := g.Run(context.Background(), "monokube status"); err != nil || code != 1 {
		t.Errorf("monokube status after stop: exit %d (%v), want 1", code, err)
	}
	if _, _, code, _ := g.Run(context.Background(), init.active); code == 0 {
		t.Errorf("%q says the service runs after monokube stop", init.active)
	}
	g.MustRun("monokube start")
	waitFor(t, g, 15*time.Minute, "monokube status to exit 0", "monokube status > /dev/null")
	g.MustRun("monokube uninstall")
	if _, _, code, _ := g.Run(context.Background(), "test -e "+init.file); code == 0 {
		t.Errorf("%s is still there after monokube uninstall", init.file)
	}
	if _, _, code, _ := g.Run(context.Background(), init.active); code == 0 {
		t.Errorf("%q says the service runs after monokube uninstall", init.active)
	}
	t.Logf("%s guest under TCG: %s", init.name, strings.Join(numbers, " "))
	fmt.Printf("vm-%s %s\n", init.name, strings.Join(numbers, " "))
}

// checkActiveAfterReady checks, right after install returned, that the
// API server already answers /readyz: install's `systemctl enable --now`
// returns when the unit is active, which with Type=notify is when the
// server sent READY=1. With Type=simple it is as soon as the process runs,
// long before /readyz is ok. (The journal cannot tell: journald's rate
// limit drops lines of a server's start.)
func checkActiveAfterReady(t *testing.T, g *Guest) {
	t.Helper()
	if kind := strings.TrimSpace(g.MustRun("systemctl show monokube -p Type --value")); kind != "notify" {
		t.Errorf("the unit's Type is %q, want notify", kind)
	}
	if _, stderr, code, err := g.Run(context.Background(), "monokube kubectl get --raw /readyz"); err != nil || code != 0 {
		t.Errorf("the unit is active but /readyz is not ok: exit %d, %v: %s", code, err, stderr)
	}
	out, _, _, _ := g.Run(context.Background(), "journalctl -u systemd-journald --no-pager | grep -c 'Suppressed.*monokube'")
	t.Logf("journald suppressed the server's lines %s times during its start", strings.TrimSpace(out))
}

func since(start time.Time) string { return time.Since(start).Round(time.Second).String() }

// statusPID is the server's PID as `monokube status -o json` reports it.
func statusPID(t *testing.T, g *Guest) int {
	t.Helper()
	var status struct {
		PID int `json:"pid"`
	}
	out := g.MustRun("monokube status -o json")
	if err := json.Unmarshal([]byte(out), &status); err != nil || status.PID == 0 {
		t.Fatalf("monokube status -o json: no pid (%v):\n%s", err, out)
	}
	return status.PID
}

// podProcesses lists the PIDs in a pod's cgroup tree, sorted.
func podProcesses(g *Guest, cgroup string) string {
	return strings.TrimSpace(g.MustRun("cat $(find " + cgroup + " -name cgroup.procs) | sort -n | tr '\\n' ' '"))
}

func waitNodeReady(t *testing.T, g *Guest, node string, timeout time.Duration) {
	t.Helper()
	waitFor(t, g, timeout, "node "+node+" Ready",
		`monokube kubectl get node `+node+` -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' | grep -qx True`)
}

// waitFor runs command in the guest every 2 s until it exits 0.
func waitFor(t *testing.T, g *Guest, timeout time.Duration, what, command string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		select {
		case <-g.Exited():
			t.Fatalf("%s: the guest's qemu exited (see %s)", what, g.SerialLog)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		stdout, stderr, code, err := g.Run(ctx, command)
		cancel()
		if err == nil && code == 0 {
			return
		}
		last = fmt.Sprintf("exit %d, %v: %s%s", code, err, stdout, stderr)
		time.Sleep(2 * time.Second)
	}
	out, _, _, _ := g.Run(context.Background(), "monokube status; tail -n 40 /var/log/monokube*.log 2>/dev/null; journalctl -u monokube -n 40 --no-pager 2>/dev/null")
	t.Fatalf("%s: not within %s (last: %s)\n%s", what, timeout, last, out)
}
