package vm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestBoot boots each image hack/vmimage.sh makes, checks that its init is
// PID 1, that cgroup v2 alone is mounted, that eth0 has its static address
// and that the share is readable, that Run reports what a command did,
// reboots it once and powers it off.
func TestBoot(t *testing.T) {
	images := Images(t)
	share := t.TempDir()
	if err := os.WriteFile(filepath.Join(share, "hello"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		init     string
		pid1     []string // /proc/1/comm: sysvinit's init runs OpenRC
		hostname string
	}{
		{init: "systemd", pid1: []string{"systemd"}, hostname: "vm-systemd"},
		{init: "openrc", pid1: []string{"init", "openrc-init"}, hostname: "vm-openrc"},
	} {
		t.Run(tc.init, func(t *testing.T) {
			g := Boot(t, Image(filepath.Join(images, tc.init)).WithShare(share))
			out := g.MustRun("uname -r; cat /proc/1/comm; stat -fc %T /sys/fs/cgroup; ip -4 addr show eth0; hostname; cat " + ShareMountPoint + "/hello")
			t.Logf("%s:\n%s", tc.init, out)
			lines := strings.Split(out, "\n")
			if len(lines) < 3 {
				t.Fatalf("want uname, PID 1's name and the cgroup fs type first, got %q", out)
			}
			if !slices.Contains(tc.pid1, lines[1]) {
				t.Errorf("PID 1 is %q, want one of %q", lines[1], tc.pid1)
			}
			if lines[2] != "cgroup2fs" {
				t.Errorf("/sys/fs/cgroup is %q, want cgroup2fs (cgroup v2 only)", lines[2])
			}
			for _, want := range []string{"inet 10.0.2.15/24", tc.hostname, "from the host"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q", want)
				}
			}
			if tc.init == "openrc" {
				g.MustRun(`test -e /run/openrc/softlevel && grep -qw memory /sys/fs/cgroup/cgroup.controllers &&
					test "$(dpkg-query -W -f='${db:Status-Status}' systemd-sysv)" = not-installed`)
			} else {
				g.MustRun("systemctl is-active qemu-guest-agent systemd-networkd")
			}

			checkRun(t, g)

			if err := g.Reboot(); err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(g.MustRun("cat /proc/1/comm; cat " + ShareMountPoint + "/hello")); !strings.HasSuffix(got, "from the host") {
				t.Errorf("after reboot: %q", got)
			}
			// One serial log for both boots: the second qemu appends.
			if raw, err := os.ReadFile(g.SerialLog); err != nil || strings.Count(string(raw), "Linux version") != 2 {
				t.Errorf("serial log %s does not hold both boots (%v)", g.SerialLog, err)
			}

			if err := g.Poweroff(5 * time.Minute); err != nil {
				t.Fatal(err)
			}
			select {
			case <-g.Exited():
			default:
				t.Error("Poweroff returned with the guest not down")
			}
		})
	}
}

// checkRun checks what Run returns: both outputs and the exit code, a
// signal as 128+N, and a context that ends before the command does.
func checkRun(t *testing.T, g *Guest) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stdout, stderr, code, err := g.Run(ctx, "echo out; echo err >&2; exit 3")
	if err != nil || stdout != "out\n" || stderr != "err\n" || code != 3 {
		t.Errorf("Run(exit 3) = %q, %q, %d, %v; want \"out\\n\", \"err\\n\", 3, nil", stdout, stderr, code, err)
	}
	if _, _, code, err := g.Run(ctx, "kill -TERM $$"); err != nil || code != 128+15 {
		t.Errorf("Run(kill -TERM $$) = %d, %v; want 143, nil", code, err)
	}
	short, cancelShort := context.WithTimeout(ctx, 3*time.Second)
	defer cancelShort()
	if _, _, _, err := g.Run(short, "sleep 600"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run(sleep 600) with a 3s context: err = %v, want DeadlineExceeded", err)
	}
	if out := g.MustRun("pgrep -x sleep || true"); out != "" {
		t.Errorf("the timed-out sleep still runs: pid %s", out)
	}
}
