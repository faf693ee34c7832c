package sysinfo

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// fakeHost is a host described by its files; what is not listed is absent.
type fakeHost struct {
	files   map[string]string
	tools   map[string]bool
	release string
	free    uint64
	busy    map[int]bool
	inotify int
}

func (f fakeHost) ReadFile(path string) (string, error) {
	if content, ok := f.files[path]; ok {
		return content, nil
	}
	return "", os.ErrNotExist
}
func (f fakeHost) Exists(path string) bool { _, ok := f.files[path]; return ok }
func (f fakeHost) BundledTools() []string {
	var tools []string
	for tool, bundled := range f.tools {
		if bundled {
			tools = append(tools, tool)
		}
	}
	return tools
}
func (f fakeHost) KernelRelease() string            { return f.release }
func (f fakeHost) FreeBytes(string) (uint64, error) { return f.free, nil }
func (f fakeHost) InotifyInstances() int            { return f.inotify }
func (f fakeHost) Listen(port int) error {
	if f.busy[port] {
		return errors.New("address already in use")
	}
	return nil
}

// goodHost can run everything (cgroup v1, like the development machines).
func goodHost() fakeHost {
	return fakeHost{
		files: map[string]string{
			"/proc/cgroups":     "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpuset\t2\t1\t1\ncpu\t3\t1\t1\ncpuacct\t3\t1\t1\nmemory\t4\t1\t1\npids\t5\t1\t1\nhugetlb\t6\t1\t1\nblkio\t7\t1\t1\n",
			"/proc/self/ns/net": "", "/proc/self/ns/mnt": "", "/proc/self/ns/pid": "", "/proc/self/ns/ipc": "", "/proc/self/ns/uts": "",
			"/proc/self/cgroup":                            "4:memory:/\n0::/\n",
			"/proc/filesystems":                            "nodev\tsysfs\nnodev\toverlay\n",
			"/proc/sys/net/bridge/bridge-nf-call-iptables": "1",
			"/sys/module/vxlan":                            "",
			"/proc/sys/net/ipv4/ip_forward":                "1\n",
			"/proc/sys/net/netfilter/nf_conntrack_max":     "262144\n",
			"/proc/sys/fs/inotify/max_user_instances":      "8192\n",
			"/proc/sys/fs/inotify/max_user_watches":        "524288\n",
			"/proc/swaps":                                  "Filename\tType\tSize\tUsed\tPriority\n",
			"/etc/resolv.conf":                             "nameserver 192.0.2.53\n",
		},
		tools:   map[string]bool{"iptables": true, "iptables-restore": true, "ip6tables": true, "nft": true, "ipset": true, "conntrack": true},
		release: "6.1.0-28-amd64",
		free:    50 << 30,
	}
}

func run(h Host, opts Options) map[string]Result {
	out := map[string]Result{}
	checks := []func(Host, Options) []Result{kernel, cgroupControllers, namespaces, nestedCgroup, diskSpace, ports,
		overlayfs, bridgeNetfilter, vxlan, ipForward, conntrack, ipvs, netTools, inotify, swap, resolvConf, protectedKernelDefaults}
	for _, check := range checks {
		for _, r := range check(h, opts) {
			out[r.Name] = r
		}
	}
	return out
}

func TestAGoodHostPassesAndWarnsOnlyForIPVS(t *testing.T) {
	results := run(goodHost(), Options{Node: true, Server: true, DataDir: "/var/lib/monokube", Ports: []int{6443, 10250}, NetworkPolicy: true})
	for name, r := range results {
		want := Pass
		if name == "ip_vs" {
			want = Warn
		}
		if r.Status != want {
			t.Errorf("%s: %s (%s), want %s", name, r.Status, r.Message, want)
		}
	}
}

func TestEachProblemIsNamedWithItsFix(t *testing.T) {
	cases := []struct {
		name   string
		breaks func(*fakeHost, *Options)
		check  string
		status Status
		says   string
	}{
		{"old kernel", func(h *fakeHost, _ *Options) { h.release = "3.10.0" }, "kernel", Fail, "upgrade"},
		{"no memory controller", func(h *fakeHost, _ *Options) {
			h.files["/proc/cgroups"] = strings.Replace(h.files["/proc/cgroups"], "memory\t4\t1\t1", "memory\t0\t1\t0", 1)
		}, "cgroup memory", Fail, "cgroup_enable=memory"},
		{"cgroup v2 without cpuset", func(h *fakeHost, _ *Options) {
			h.files["/sys/fs/cgroup/cgroup.controllers"] = "cpu io memory pids"
		}, "cgroup cpuset", Fail, "controller missing"},
		{"nested without a root", func(h *fakeHost, _ *Options) {
			h.files["/proc/self/cgroup"] = "4:memory:/sandbox/job1\n0::/\n"
		}, "nested cgroup", Warn, "--cgroup-root /sandbox/job1/monokube"},
		{"nested with a root below", func(h *fakeHost, o *Options) {
			h.files["/proc/self/cgroup"] = "4:memory:/sandbox/job1\n0::/\n"
			o.CgroupRoot = "/sandbox/job1/mk"
		}, "nested cgroup", Pass, "below"},
		{"little disk", func(h *fakeHost, _ *Options) { h.free = 512 << 20 }, "disk space", Fail, "at least 1 GiB"},
		{"busy port", func(h *fakeHost, _ *Options) { h.busy = map[int]bool{6443: true} }, "port 6443", Fail, "in use"},
		{"iptables not bundled", func(h *fakeHost, _ *Options) { delete(h.tools, "iptables") }, "iptables", Fail, "make build"},
		{"ipvs mode without ip_vs", func(_ *fakeHost, o *Options) { o.IPVS = true }, "ip_vs", Fail, "ipvs"},
		{"forwarding off", func(h *fakeHost, _ *Options) { h.files["/proc/sys/net/ipv4/ip_forward"] = "0" }, "ip_forward", Warn, "sysctl -w net.ipv4.ip_forward=1"},
		{"few inotify instances", func(h *fakeHost, _ *Options) { h.files["/proc/sys/fs/inotify/max_user_instances"] = "128" }, "fs.inotify.max_user_instances", Warn, "sysctl -w"},
		{"inotify instances used up", func(h *fakeHost, _ *Options) {
			h.files["/proc/sys/fs/inotify/max_user_instances"] = "128"
			h.inotify = 120
		}, "fs.inotify.max_user_instances", Fail, "120 of 128 in use by this user; a node needs about 12 more (sysctl -w fs.inotify.max_user_instances=512)"},
		{"swap on", func(h *fakeHost, _ *Options) { h.files["/proc/swaps"] += "/swapfile\tfile\t1024\t0\t-2\n" }, "swap", Warn, "swapoff"},
		{"loopback resolver only", func(h *fakeHost, _ *Options) { h.files["/etc/resolv.conf"] = "nameserver 127.0.0.53\n" }, "resolv.conf", Warn, "8.8.8.8"},
		{"no overlayfs", func(h *fakeHost, _ *Options) { h.files["/proc/filesystems"] = "nodev\tsysfs\n" }, "overlayfs", Fail, "modprobe overlay"},
		{"cis profile on Debian's kernel defaults", func(h *fakeHost, o *Options) {
			o.ProtectKernelDefaults = true
			setKernelDefaults(h, map[string]string{"vm/overcommit_memory": "0", "kernel/panic": "0", "kernel/panic_on_oops": "0"})
		}, "kernel defaults", Fail, "vm.overcommit_memory is 0, needs 1, kernel.panic is 0, needs 10, kernel.panic_on_oops is 0, needs 1: put vm.overcommit_memory=1 kernel.panic=10 kernel.panic_on_oops=1 in /etc/sysctl.d/90-kubelet.conf"},
		{"cis profile on the kubelet's kernel defaults", func(h *fakeHost, o *Options) {
			o.ProtectKernelDefaults = true
			setKernelDefaults(h, nil)
		}, "kernel defaults", Pass, "protectKernelDefaults"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := goodHost()
			opts := Options{Node: true, Server: true, DataDir: "/var/lib/monokube", Ports: []int{6443}, NetworkPolicy: true}
			c.breaks(&h, &opts)
			r, ok := run(h, opts)[c.check]
			if !ok || r.Status != c.status || !strings.Contains(r.Message, c.says) {
				t.Fatalf("%s: got %+v, want %s mentioning %q", c.check, r, c.status, c.says)
			}
		})
	}
}

// setKernelDefaults gives h the kubelet's kernel defaults but for except.
func setKernelDefaults(h *fakeHost, except map[string]string) {
	for _, param := range kernelDefaults {
		value, changed := except[param.path]
		if !changed {
			value = fmt.Sprint(param.value)
		}
		h.files["/proc/sys/"+param.path] = value + "\n"
	}
}

func TestFailedListsEveryFailure(t *testing.T) {
	err := Failed([]Result{{Name: "a", Status: Pass}, {Name: "kernel", Status: Fail, Message: "too old"}, {Name: "ports", Status: Fail, Message: "busy"}})
	if err == nil || !strings.Contains(err.Error(), "kernel: too old") || !strings.Contains(err.Error(), "ports: busy") {
		t.Fatalf("Failed = %v", err)
	}
	if Failed([]Result{{Name: "x", Status: Warn}}) != nil {
		t.Fatal("a warning failed the start")
	}
}

// Processes end while the count walks /proc; that must not crash a start
// (it did, in a start soak).
func TestInotifyCountSurvivesProcessesEnding(t *testing.T) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 100 {
			_ = exec.Command("true").Run()
		}
	}()
	for {
		select {
		case <-done:
			if n := (realHost{}).InotifyInstances(); n < 0 {
				t.Fatalf("count %d", n)
			}
			return
		default:
			(realHost{}).InotifyInstances()
		}
	}
}
