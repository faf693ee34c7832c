// Package vm boots Debian guests under qemu for tests that need a whole
// machine: an init system (systemd or OpenRC) as PID 1, reboots, a kernel
// of its own. The images come from hack/vmimage.sh; a test finds them with
// Images and boots one with Boot:
//
//	dir := vm.Images(t) // skips the test unless MONOKUBE_VM_IMAGES is set
//	g := vm.Boot(t, vm.Image(filepath.Join(dir, "systemd")).WithShare(binDir))
//	kernel := g.MustRun("uname -r")
//
// qemu emulates the CPU (TCG): KVM is not usable on the machines the tests
// run on. Each guest runs in a network namespace of its own with only
// loopback in it, so qemu's user-mode network (slirp; the guest is
// 10.0.2.15/24, gateway 10.0.2.2, DNS 10.0.2.3) has no way out of the
// machine. The guest's disk is a qcow2 overlay in the test's temp dir over
// the read-only image, so every boot starts from the same pristine image.
// The test drives the guest through qemu-guest-agent (Run, Reboot); qemu,
// the overlay and the namespace go away when the test ends.
//
// A guest that reboots (Reboot, or a `reboot` of its own) gets a new qemu
// on the same disk rather than qemu's warm reset: under TCG a boot after a
// warm reset took about twice as long as one in a fresh qemu.
package vm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ShareMountPoint is where the guest sees Options.Share (read-only).
const ShareMountPoint = "/mnt/host"

// Options say what to boot and with what.
type Options struct {
	// Kernel, Initrd and RootImage are the files hack/vmimage.sh writes:
	// vmlinuz, initrd.img and root.img (raw ext4, booted as /dev/vda).
	// RootImage is never written: the guest writes to an overlay.
	Kernel, Initrd, RootImage string
	// Share is a host directory the guest mounts read-only at
	// ShareMountPoint (virtio-9p), again after each Reboot. Empty: none.
	Share string
	// Memory in MiB; 0 means 4096.
	Memory int
	// CPUs; 0 means 2.
	CPUs int
	// Arch is the guest's architecture; only "x86_64" (or "") for now.
	Arch string
	// KernelArgs are appended to the kernel command line.
	KernelArgs string
	// BootTimeout bounds qemu start → agent answering, and each Reboot;
	// 0 means 10 minutes: an emulated CPU on a 2-core machine shared
	// with other work has taken over 5 minutes to reboot.
	BootTimeout time.Duration
}

// Image returns the Options for an image directory written by
// hack/vmimage.sh (vmlinuz, initrd.img, root.img), with the defaults.
func Image(dir string) Options {
	return Options{
		Kernel:    filepath.Join(dir, "vmlinuz"),
		Initrd:    filepath.Join(dir, "initrd.img"),
		RootImage: filepath.Join(dir, "root.img"),
	}
}

// WithShare returns o with Share set to dir.
func (o Options) WithShare(dir string) Options {
	o.Share = dir
	return o
}

// Images returns $MONOKUBE_VM_IMAGES, the directory holding one image
// directory per init (systemd/, openrc/), and skips the test when it is
// not set.
func Images(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("MONOKUBE_VM_IMAGES")
	if dir == "" {
		t.Skip("MONOKUBE_VM_IMAGES is not set: build the images with hack/vmimage.sh systemd|openrc DIR/<init>")
	}
	return dir
}

// Guest is one guest machine: its disk, its namespace and its qemu (a new
// one after each reboot). Its methods other than MustRun may be called from
// any goroutine; agent conversations are serialized.
type Guest struct {
	// SerialLog is the guest's serial console (kernel and init messages).
	SerialLog string

	t       testing.TB
	opts    Options
	dir     string
	overlay string
	netns   string
	agent   *agent
	qmp     string // qemu's monitor socket: how a reset is told from a poweroff

	mu       sync.Mutex
	qemu     *qemuRun // the qemu of the current boot
	stopping bool     // Stop was called: an exit is final

	down    chan struct{} // closed when the guest is off for good; then downErr is set
	downErr error
}

// qemuRun is one qemu process: one boot of the guest.
type qemuRun struct {
	cmd     *exec.Cmd
	started time.Time
	exited  chan struct{} // closed after the process and its monitor connection ended
	err     error         // from Wait
	reset   bool          // the guest asked for a reset (reboot), not a poweroff
}

// Boot starts qemu with opts and waits until the guest agent answers (and
// the share is mounted). It fails the test if that does not happen within
// opts.BootTimeout. The guest is killed and its namespace and files removed
// when the test ends; a failed test gets the end of the serial log in its
// output (and all of it in $MONOKUBE_TEST_LOGS when set).
func Boot(t testing.TB, opts Options) *Guest {
	t.Helper()
	if opts.Memory == 0 {
		opts.Memory = 4096
	}
	if opts.CPUs == 0 {
		opts.CPUs = 2
	}
	if opts.BootTimeout == 0 {
		opts.BootTimeout = 10 * time.Minute
	}
	if opts.Arch != "" && opts.Arch != "x86_64" {
		t.Fatalf("vm: arch %q is not supported yet (only x86_64)", opts.Arch)
	}
	for _, file := range []string{opts.Kernel, opts.Initrd, opts.RootImage} {
		if _, err := os.Stat(file); err != nil {
			t.Fatalf("vm: %v (build the image with hack/vmimage.sh)", err)
		}
	}

	var err error
	g := &Guest{t: t, opts: opts, dir: t.TempDir(), down: make(chan struct{})}
	g.SerialLog = filepath.Join(g.dir, "serial.log")
	// A unix socket path must fit in 108 bytes; a long test name or TMPDIR
	// can make the temp dir longer than that.
	socketDir := g.dir
	if len(socketDir) > 90 {
		if socketDir, err = os.MkdirTemp("/tmp", "vm-"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(socketDir) })
	}
	g.agent = &agent{socket: filepath.Join(socketDir, "qga.sock")}
	g.qmp = filepath.Join(socketDir, "qmp.sock")

	// A copy-on-write overlay: root.img stays pristine and a boot costs no copy.
	rootImage, err := filepath.Abs(opts.RootImage)
	if err != nil {
		t.Fatal(err)
	}
	g.overlay = filepath.Join(g.dir, "root.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-b", rootImage, "-F", "raw", g.overlay).CombinedOutput(); err != nil {
		t.Fatalf("vm: qemu-img create %s: %v: %s", g.overlay, err, out)
	}

	// Created first, so it is removed last: after qemu, which runs in it.
	g.netns = newNetNS(t)

	run, err := g.startQemu()
	if err != nil {
		t.Fatalf("vm: %v", err)
	}
	g.qemu = run
	go g.supervise(run)
	t.Cleanup(func() {
		g.Stop()
		if t.Failed() {
			g.dumpLogs()
		}
	})

	if err := g.WaitAgent(opts.BootTimeout); err != nil {
		t.Fatalf("vm: boot %s: %v", opts.RootImage, err)
	}
	t.Logf("vm: %s: guest agent answered %.1fs after qemu started (serial log %s)",
		filepath.Base(filepath.Dir(rootImage)), time.Since(run.started).Seconds(), g.SerialLog)
	if err := g.MountShare(); err != nil {
		t.Fatalf("vm: %v", err)
	}
	return g
}

// qemuArgs is the whole machine: q35 with an emulated CPU, the kernel booted
// directly, the overlay as virtio disk /dev/vda, slirp behind virtio-net,
// the agent's virtio-serial port, the share as virtio-9p, and the serial
// console appended to SerialLog (one log across reboots). -nodefaults: no
// VGA, no default NIC or monitor; the QMP monitor tells a reset from a
// poweroff, and -no-reboot makes a reset exit qemu (see supervise).
func (g *Guest) qemuArgs() []string {
	// crypto_kdf108_init only self-tests the SP800-108 KDF, and takes 4 s
	// of emulated CPU (a minute on a busy machine) before /init can start.
	// tsc=reliable: the kernel finds TCG's TSCs "unsynchronized" and falls
	// back to the HPET, whose every read is an emulated MMIO access; TCG's
	// TSC comes from the host's clock, the same for every vCPU. Boots and
	// reboots took 15-30% less time with it.
	cmdline := "root=/dev/vda rw console=ttyS0 net.ifnames=0 initcall_blacklist=crypto_kdf108_init tsc=reliable"
	if g.opts.KernelArgs != "" {
		cmdline += " " + g.opts.KernelArgs
	}
	args := []string{
		"-nodefaults", "-no-user-config", "-display", "none",
		"-machine", "q35", "-accel", "tcg,thread=multi", "-cpu", "max",
		"-m", strconv.Itoa(g.opts.Memory), "-smp", strconv.Itoa(g.opts.CPUs),
		"-kernel", g.opts.Kernel, "-initrd", g.opts.Initrd, "-append", cmdline,
		"-no-reboot", "-qmp", "unix:" + optionValue(g.qmp) + ",server=on,wait=off",
		"-drive", "file=" + optionValue(g.overlay) + ",format=qcow2,if=virtio,cache=unsafe",
		"-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0",
		"-chardev", "socket,path=" + optionValue(g.agent.socket) + ",server=on,wait=off,id=qga0",
		"-device", "virtio-serial", "-device", "virtserialport,chardev=qga0,name=org.qemu.guest_agent.0",
		"-chardev", "file,id=serial0,append=on,path=" + optionValue(g.SerialLog), "-serial", "chardev:serial0",
	}
	if g.opts.Share != "" {
		args = append(args, "-virtfs", "local,path="+optionValue(g.opts.Share)+",mount_tag=host,security_model=none,readonly=on")
	}
	return args
}

// startQemu starts one qemu for the guest, in its namespace, and follows
// its monitor. The caller owns the returned run until it has exited.
func (g *Guest) startQemu() (*qemuRun, error) {
	qemuLog, err := os.OpenFile(filepath.Join(g.dir, "qemu.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer qemuLog.Close()
	// ip netns exec execs qemu in place: the child's PID is qemu's.
	run := &qemuRun{exited: make(chan struct{})}
	run.cmd = exec.Command("ip", append([]string{"netns", "exec", g.netns, "qemu-system-x86_64"}, g.qemuArgs()...)...)
	run.cmd.Stdout, run.cmd.Stderr = qemuLog, qemuLog
	run.started = time.Now()
	if err := run.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start qemu: %w", err)
	}
	processExited := make(chan struct{})
	monitorDone := make(chan struct{})
	go func() {
		run.err = run.cmd.Wait()
		close(processExited)
	}()
	go func() {
		run.reset = watchMonitor(g.qmp, processExited)
		close(monitorDone)
	}()
	go func() {
		<-processExited
		<-monitorDone
		close(run.exited)
	}()
	return run, nil
}

// supervise follows the guest's qemu processes: when one exits because the
// guest reset itself, and the test is not stopping the guest, it starts the
// next on the same disk; any other exit is the end of the guest.
func (g *Guest) supervise(run *qemuRun) {
	for {
		<-run.exited
		g.mu.Lock()
		if g.stopping || !run.reset {
			g.downErr = run.err
			g.mu.Unlock()
			close(g.down)
			return
		}
		next, err := g.startQemu()
		if err != nil {
			g.downErr = fmt.Errorf("restart after the guest's reset: %w", err)
			g.mu.Unlock()
			close(g.down)
			return
		}
		g.qemu = next
		g.mu.Unlock()
		run = next
	}
}

// watchMonitor connects to qemu's QMP socket and reads its events until
// qemu exits. It reports whether qemu shut down because the guest reset
// itself (SHUTDOWN with reason guest-reset: -no-reboot turns a reboot into
// that), as opposed to a poweroff, a crash or a kill.
func watchMonitor(socket string, processExited <-chan struct{}) (reset bool) {
	var conn net.Conn
	for conn == nil {
		var err error
		if conn, err = net.Dial("unix", socket); err != nil {
			select {
			case <-processExited:
				return false
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	defer conn.Close()
	decoder := json.NewDecoder(conn)
	var greeting map[string]any
	if decoder.Decode(&greeting) != nil {
		return false
	}
	if _, err := conn.Write([]byte(`{"execute":"qmp_capabilities"}` + "\n")); err != nil {
		return false
	}
	for {
		var message struct {
			Event string `json:"event"`
			Data  struct {
				Reason string `json:"reason"`
			} `json:"data"`
		}
		if decoder.Decode(&message) != nil {
			return reset // qemu closed the monitor: it exited
		}
		if message.Event == "SHUTDOWN" {
			reset = message.Data.Reason == "guest-reset"
		}
	}
}

// optionValue escapes a value inside a qemu option list, where a comma
// separates options and ",," is a literal comma.
func optionValue(value string) string { return strings.ReplaceAll(value, ",", ",,") }

// MountShare mounts Options.Share at ShareMountPoint (read-only). Boot and
// Reboot do; a test calls it itself only after a reboot it did not ask for
// with Reboot (then WaitAgent first). 9p over virtio rather than a second
// disk image: nothing to copy or mkfs per boot, the guest sees the host
// directory as it is now, and Debian's kernel has 9p and 9pnet_virtio as
// modules (udev loads the transport, mount loads 9p).
func (g *Guest) MountShare() error {
	if g.opts.Share == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	command := "mkdir -p " + ShareMountPoint + " && mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000 host " + ShareMountPoint
	if _, stderr, code, err := g.Run(ctx, command); err != nil || code != 0 {
		return fmt.Errorf("mount share %s at %s: exit %d: %v %s", g.opts.Share, ShareMountPoint, code, err, stderr)
	}
	return nil
}

// WaitAgent waits until the guest agent answers, trying again every second
// for up to timeout. It gives up early when qemu exits.
func (g *Guest) WaitAgent(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-g.down:
			return fmt.Errorf("the guest is off: qemu exited: %v (see %s and qemu.log beside it)", g.downErr, g.SerialLog)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), min(5*time.Second, time.Until(deadline)))
		lastErr = g.agent.session(ctx, func(*agentConn) error { return nil })
		cancel()
		if lastErr == nil {
			return nil
		}
		select {
		case <-g.down:
		case <-time.After(time.Second):
		}
	}
	return fmt.Errorf("guest agent did not answer within %s (last: %v; see %s)", timeout, lastErr, g.SerialLog)
}

// guestPath is the PATH of a root login shell: qemu-ga started by OpenRC
// has only /sbin:/bin:/usr/sbin:/usr/bin, where /usr/local/bin/monokube is
// not found.
const guestPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Run runs `/bin/sh -c command` in the guest as root with a login shell's
// PATH, in a process group of its own, and returns its output and exit code (128+N when signal N ended
// it). err is about the running, not the command: a non-zero exit is not an
// error. When ctx ends first, the process group is killed (a daemon that
// made a session of its own outlives it) and err wraps ctx.Err().
func (g *Guest) Run(ctx context.Context, command string) (stdout, stderr string, exitCode int, err error) {
	err = g.agent.session(ctx, func(c *agentConn) error {
		stdout, stderr, exitCode, err = c.exec(ctx, []string{"/bin/sh", "-c", "PATH=" + guestPath + "; export PATH; " + command})
		return err
	})
	if err != nil {
		err = fmt.Errorf("run %q in guest: %w", command, err)
	}
	return stdout, stderr, exitCode, err
}

// MustRun runs command with a 10-minute limit and returns its stdout; it
// fails the test when the command cannot run or exits non-zero. Call it
// from the test's goroutine only.
func (g *Guest) MustRun(command string) string {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	stdout, stderr, code, err := g.Run(ctx, command)
	if err != nil {
		g.t.Fatalf("vm: %v", err)
	}
	if code != 0 {
		g.t.Fatalf("vm: %q exited %d\nstdout:\n%s\nstderr:\n%s", command, code, stdout, stderr)
	}
	return stdout
}

// BootID is the guest kernel's boot id: it changes with every boot.
func (g *Guest) BootID(ctx context.Context) (string, error) {
	stdout, stderr, code, err := g.Run(ctx, "cat /proc/sys/kernel/random/boot_id")
	if err == nil && code != 0 {
		err = fmt.Errorf("read boot_id: exit %d: %s", code, stderr)
	}
	return strings.TrimSpace(stdout), err
}

// Reboot runs `reboot` in the guest and waits, up to Options.BootTimeout,
// until the agent answers from a new boot (the boot id changed: the agent
// of the old boot answers for a while during shutdown). The guest's init
// shuts down as on any reboot; the reset starts a new qemu on the same disk
// (see the package doc). The share is mounted again.
func (g *Guest) Reboot() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before, err := g.BootID(ctx)
	if err != nil {
		return fmt.Errorf("reboot: %w", err)
	}
	start := time.Now()
	// Not waited for: the agent may be stopped before it could answer.
	err = g.agent.session(ctx, func(c *agentConn) error {
		return c.call(ctx, "guest-exec", map[string]any{"path": "/bin/sh", "arg": []string{"-c", "reboot"}}, nil)
	})
	if err != nil {
		return fmt.Errorf("reboot: %w", err)
	}
	deadline := start.Add(g.opts.BootTimeout)
	for {
		if err := g.WaitAgent(time.Until(deadline)); err != nil {
			return fmt.Errorf("reboot: %w", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		after, err := g.BootID(ctx)
		cancel()
		if err == nil && after != before {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("reboot: still boot %s after %s (see %s)", before, g.opts.BootTimeout, g.SerialLog)
		}
		time.Sleep(time.Second)
	}
	g.t.Logf("vm: rebooted: guest agent answered %.1fs after reboot", time.Since(start).Seconds())
	return g.MountShare()
}

// Poweroff runs `poweroff` in the guest and waits up to timeout for qemu to
// exit; then it kills qemu and returns an error. For tests of what a clean
// shutdown does; Stop is enough to get rid of a guest.
func (g *Guest) Poweroff(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := g.agent.session(ctx, func(c *agentConn) error {
		return c.call(ctx, "guest-exec", map[string]any{"path": "/bin/sh", "arg": []string{"-c", "poweroff"}}, nil)
	})
	if err != nil {
		g.Stop()
		return fmt.Errorf("poweroff: %w", err)
	}
	select {
	case <-g.down:
		return nil
	case <-time.After(timeout):
		g.Stop()
		return fmt.Errorf("poweroff: qemu still running after %s, killed (see %s)", timeout, g.SerialLog)
	}
}

// Stop kills qemu (SIGKILL to its PID: the disk is a throw-away overlay, so
// nothing needs a clean shutdown) and waits for it. It is safe to call more
// than once; the test's cleanup calls it.
func (g *Guest) Stop() {
	g.mu.Lock()
	g.stopping = true
	run := g.qemu
	g.mu.Unlock()
	if err := run.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		g.t.Errorf("vm: kill qemu %d: %v", run.cmd.Process.Pid, err)
	}
	<-g.down
}

// Exited is closed when the guest's qemu has exited for good: poweroff, a
// crash or Stop. A reboot's exit is not one: the next qemu takes over.
func (g *Guest) Exited() <-chan struct{} { return g.down }

// dumpLogs prints the end of the serial log (and qemu's own output) into the
// test output. With MONOKUBE_TEST_LOGS set, both are also kept in that dir.
func (g *Guest) dumpLogs() {
	for _, name := range []string{"serial.log", "qemu.log"} {
		raw, err := os.ReadFile(filepath.Join(g.dir, name))
		if err != nil {
			continue
		}
		if dir := os.Getenv("MONOKUBE_TEST_LOGS"); dir != "" {
			_ = os.MkdirAll(dir, 0o755)
			_ = os.WriteFile(filepath.Join(dir, strings.ReplaceAll(g.t.Name(), "/", "_")+"-"+g.netns+"-"+name), raw, 0o644)
		}
		if len(raw) > 8000 {
			raw = raw[len(raw)-8000:]
		}
		g.t.Logf("--- last lines of %s ---\n%s", filepath.Join(g.dir, name), bytes.TrimSpace(raw))
	}
}
