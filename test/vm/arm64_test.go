package vm

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestArm64Node boots the arm64 build in an emulated aarch64 machine (qemu
// "virt", TCG) with Debian's arm64 kernel and, as its whole userland, an
// initramfs of busybox and monokube-linux-arm64: `version` and `sysinfo`
// run, `server --enable-worker` gets its Node Ready and a pod Running. The
// guest's /init reports each step on the serial console ("vmtest: ...")
// and powers off; the test reads those lines.
func TestArm64Node(t *testing.T) {
	dir, program := os.Getenv("MONOKUBE_VM_ARM64"), os.Getenv("MONOKUBE_ARM64_PROGRAM")
	if dir == "" || program == "" {
		t.Skip("MONOKUBE_VM_ARM64 (Debian's arm64 kernel and busybox, unpacked) and MONOKUBE_ARM64_PROGRAM (make vmtest)")
	}
	kernels, _ := filepath.Glob(filepath.Join(dir, "boot", "vmlinuz-*"))
	moduleDirs, _ := filepath.Glob(filepath.Join(dir, "lib", "modules", "*"))
	if len(kernels) != 1 || len(moduleDirs) != 1 {
		t.Fatalf("%s: want one boot/vmlinuz-* and one lib/modules/*; found %v and %v", dir, kernels, moduleDirs)
	}
	work := t.TempDir()
	image := newInitramfs()
	image.file("bin/busybox", filepath.Join(dir, "bin", "busybox"), 0o755)
	image.file("usr/local/bin/monokube", program, 0o755)
	image.text("init", arm64Init, 0o755)
	version := filepath.Base(moduleDirs[0])
	// The modules a node needs (netfilter, bridges, veth, VXLAN, overlayfs,
	// the virtio PCI bus and network card), not the whole 300 MB tree.
	if err := image.tree("lib/modules/"+version, moduleDirs[0], func(rel string) bool {
		return !strings.HasSuffix(rel, ".ko") || strings.HasPrefix(rel, "kernel/net/") ||
			strings.HasPrefix(rel, "kernel/fs/overlayfs/") || strings.HasPrefix(rel, "kernel/drivers/net/") ||
			strings.HasPrefix(rel, "kernel/drivers/virtio/") ||
			strings.HasPrefix(rel, "kernel/lib/") || strings.HasPrefix(rel, "kernel/crypto/")
	}); err != nil {
		t.Fatal(err)
	}
	initrd := filepath.Join(work, "initramfs.cpio")
	if err := image.write(initrd); err != nil {
		t.Fatal(err)
	}
	serial := filepath.Join(work, "serial.log")
	netns := newNetNS(t)
	args := []string{"netns", "exec", netns, "qemu-system-aarch64",
		"-nodefaults", "-no-user-config", "-display", "none",
		"-machine", "virt", "-cpu", "max", "-accel", "tcg,thread=multi", "-smp", "2", "-m", "4096",
		"-kernel", kernels[0], "-initrd", initrd,
		"-append", "console=ttyAMA0 rdinit=/init panic=-1",
		"-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0",
		"-serial", "file:" + serial, "-no-reboot",
	}
	started := time.Now()
	qemu := exec.Command("ip", args...)
	qemu.Stderr = os.Stderr
	if err := qemu.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- qemu.Wait() }()
	// Under emulation everything is ten to twenty times slower than here.
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("qemu: %v", err)
		}
	case <-time.After(80 * time.Minute):
		_ = qemu.Process.Kill()
		<-done
		t.Error("the guest did not finish within 80 minutes")
	}
	took := time.Since(started)
	steps := readSteps(t, serial)
	if t.Failed() || steps["result"] != "ok" {
		dumpTail(t, serial, 80)
		t.Fatalf("the arm64 guest did not pass (result %q)", steps["result"])
	}
	t.Logf("arm64 guest under TCG: %s; qemu start to power off %s", steps["version"], took.Round(time.Second))
	for _, step := range []string{"booted", "node-ready", "pod-running"} {
		t.Logf("  %s at %s s of the guest's uptime", step, steps[step])
	}
	fmt.Printf("vm-arm64 version=%q booted=%ss node-ready=%ss pod-running=%ss total=%s\n",
		steps["version"], steps["booted"], steps["node-ready"], steps["pod-running"], took.Round(time.Second))
}

// readSteps returns the "vmtest: KEY VALUE" lines of the serial log.
func readSteps(t *testing.T, path string) map[string]string {
	steps := map[string]string{}
	file, err := os.Open(path)
	if err != nil {
		t.Error(err)
		return steps
	}
	defer file.Close()
	scanner := bufio.NewScanner(file)
	scanner.Buffer(make([]byte, 1<<20), 1<<20)
	for scanner.Scan() {
		line := strings.TrimSpace(scanner.Text())
		_, rest, ok := strings.Cut(line, "vmtest: ")
		if !ok {
			continue
		}
		key, value, _ := strings.Cut(rest, " ")
		steps[key] = value
	}
	return steps
}

func dumpTail(t *testing.T, path string, lines int) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return
	}
	all := strings.Split(string(raw), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	t.Logf("serial log %s (end):\n%s", path, strings.Join(all, "\n"))
}

// arm64Init is the guest's /init. It moves itself from the initramfs to a
// tmpfs first: runc cannot pivot_root out of the initramfs.
const arm64Init = `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /bin /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t devtmpfs dev /dev
if [ "$$" = 1 ] && [ ! -e /.moved ]; then
	mkdir /newroot && mount -t tmpfs -o size=3g,mode=755 tmpfs /newroot
	for entry in bin sbin usr lib init; do cp -a /$entry /newroot/; done
	touch /newroot/.moved
	umount /proc /dev
	exec switch_root /newroot /init
fi
export PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
step() { echo "vmtest: $1 $2" > /dev/console; }
uptime_s() { cut -d' ' -f1 /proc/uptime; }
fail() { step failed "$1"; tail -n 60 /var/log/server.log > /dev/console 2>&1; step result failed; poweroff -f; }
mount -t sysfs sys /sys
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mkdir -p /tmp /run /var/log /var/lib /etc /root /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd
echo 'root:x:0:' > /etc/group
echo vm-arm64 > /etc/hostname && hostname vm-arm64
printf '127.0.0.1 localhost\n10.0.2.15 vm-arm64\n' > /etc/hosts
echo 'nameserver 10.0.2.3' > /etc/resolv.conf
cat /proc/sys/kernel/random/uuid | tr -d - > /etc/machine-id
depmod
for module in virtio_pci virtio_net overlay bridge br_netfilter veth vxlan nf_conntrack nf_nat iptable_nat iptable_filter \
	iptable_mangle iptable_raw ip6table_nat ip6table_filter ip6table_mangle xt_conntrack xt_MASQUERADE xt_comment \
	xt_mark xt_addrtype xt_multiport xt_statistic xt_physdev xt_nat xt_set ip_set ip_set_hash_ip ip_set_hash_net \
	nf_tables nft_compat nft_chain_nat nft_ct nft_masq nft_nat; do
	modprobe $module 2>/dev/null
done
ip link set lo up
ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2 || fail network
step booted $(uptime_s)
version=$(monokube version) || fail version
step version "$version"
monokube sysinfo > /var/log/sysinfo.log 2>&1; code=$?
cat /var/log/sysinfo.log > /dev/console
[ $code = 0 ] || fail sysinfo
# As a service manager would (Restart=always): under emulation the API
# server can miss one of upstream's own start-up deadlines and end the
# process; the next start finds the datastore filled and goes faster.
( n=0; while :; do monokube server --enable-worker >> /var/log/server.log 2>&1; n=$((n + 1))
	echo "vmtest-progress: the server ended ($n); starting it again" > /dev/console; sleep 5; done ) &
# waitfor SECONDS WHAT COMMAND: runs COMMAND every 5 s until it succeeds,
# printing where the server is once a minute (each monokube command takes
# seconds under emulation).
waitfor() {
	limit=$(( $(cut -d. -f1 /proc/uptime) + $1 )); what=$2; shift 2; next=0
	while :; do
		now=$(cut -d. -f1 /proc/uptime)
		if [ $now -ge $next ]; then
			echo "vmtest-progress: $now s, waiting for $what: $(tail -n 1 /var/log/server.log | cut -c1-200)" > /dev/console
			next=$((now + 60))
		fi
		"$@" && return 0
		[ $now -ge $limit ] && return 1
		sleep 5
	done
}
node_ready() { monokube kubectl get node vm-arm64 -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -q True; }
pod_running() { monokube kubectl get pod arm64-pod -o 'jsonpath={.status.phase}' 2>/dev/null | grep -q Running; }
waitfor 3600 node-ready node_ready || fail node-ready
step node-ready $(uptime_s)
monokube kubectl run arm64-pod --image=monokube.io/pause:3.10 --restart=Never > /dev/console 2>&1 || fail pod-create
waitfor 1200 pod-running pod_running || { monokube kubectl describe pod arm64-pod > /dev/console 2>&1; fail pod-running; }
step pod-running $(uptime_s)
monokube kubectl get nodes,pods -o wide > /dev/console 2>&1
step result ok
poweroff -f
`
