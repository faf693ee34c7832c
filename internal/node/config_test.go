package node

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	kubeproxyv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"

	"github.com/monokube/monokube/internal/cgroups"
	"github.com/monokube/monokube/internal/datadir"
)

func testLayout(t *testing.T) datadir.Layout {
	t.Helper()
	layout, err := datadir.New("/var/lib/monokube")
	if err != nil {
		t.Fatal(err)
	}
	return layout
}

func TestKubeletConfigurationForAServerNode(t *testing.T) {
	layout := testLayout(t)
	taint := corev1.Taint{Key: "dedicated", Value: "edge", Effect: corev1.TaintEffectNoSchedule}
	k := &Kubelet{
		Layout: layout, CAFile: "/ca.crt", ServingCert: "/serving.crt", ServingKey: "/serving.key",
		Identity: Identity{Name: "n1", CgroupRoot: "/sandbox/n1", Taints: []corev1.Taint{taint}},
		Cgroups:  cgroups.V1, ClusterDNS: "10.43.0.10", ClusterDomain: "cluster.local",
	}
	c := k.configuration("/etc/resolv.conf", -500)
	switch {
	case c.Authentication.Anonymous.Enabled == nil || *c.Authentication.Anonymous.Enabled:
		t.Error("anonymous requests must be refused")
	case c.Authentication.Webhook.Enabled == nil || !*c.Authentication.Webhook.Enabled:
		t.Error("webhook authentication must be on")
	case c.Authorization.Mode != "Webhook":
		t.Errorf("authorization mode %q, want Webhook", c.Authorization.Mode)
	case c.Authentication.X509.ClientCAFile != "/ca.crt":
		t.Errorf("client CA %q", c.Authentication.X509.ClientCAFile)
	case c.ReadOnlyPort != 0:
		t.Errorf("read-only port %d, want 0", c.ReadOnlyPort)
	case c.CgroupRoot != "/sandbox/n1" || c.CgroupDriver != "cgroupfs":
		t.Errorf("cgroups %q with %s, want /sandbox/n1 with cgroupfs", c.CgroupRoot, c.CgroupDriver)
	case c.FailCgroupV1 == nil || *c.FailCgroupV1:
		t.Error("cgroup v1 hosts must not be refused")
	case c.RotateCertificates || c.ServerTLSBootstrap:
		t.Error("a server's node uses the certificates the server issued; no bootstrap")
	case c.TLSCertFile != "/serving.crt" || c.TLSPrivateKeyFile != "/serving.key":
		t.Errorf("serving certificate %q/%q", c.TLSCertFile, c.TLSPrivateKeyFile)
	case c.ContainerRuntimeEndpoint != "unix://"+layout.ContainerdSocket():
		t.Errorf("runtime endpoint %q", c.ContainerRuntimeEndpoint)
	case c.StaticPodPath != layout.StaticPodsDir() || c.PodLogsDir != layout.PodLogsDir() || c.VolumePluginDir != layout.FlexVolumeDir():
		t.Errorf("paths outside the layout: %q %q %q", c.StaticPodPath, c.PodLogsDir, c.VolumePluginDir)
	case len(c.ClusterDNS) != 1 || c.ClusterDNS[0] != "10.43.0.10" || c.ClusterDomain != "cluster.local":
		t.Errorf("DNS %v %q", c.ClusterDNS, c.ClusterDomain)
	case c.OOMScoreAdj == nil || *c.OOMScoreAdj != -500:
		t.Error("the kubelet must keep the process's own oom_score_adj")
	case len(c.RegisterWithTaints) != 1 || c.RegisterWithTaints[0] != taint:
		t.Errorf("taints %v", c.RegisterWithTaints)
	case len(c.EvictionHard) != 5:
		t.Errorf("eviction signals %v: all five, or the unnamed ones are switched off", c.EvictionHard)
	}
}

func TestKubeletConfigurationForAWorker(t *testing.T) {
	k := &Kubelet{Layout: testLayout(t), Identity: Identity{Name: "w1"}, Cgroups: cgroups.V2, SystemdCgroups: true}
	c := k.configuration("/etc/resolv.conf", 0)
	if !c.RotateCertificates || !c.ServerTLSBootstrap {
		t.Error("a worker's kubelet must request and rotate its certificates through the cluster")
	}
	if c.CgroupDriver != "systemd" {
		t.Errorf("cgroup driver %q, want systemd", c.CgroupDriver)
	}
	if c.FailCgroupV1 != nil {
		t.Error("on cgroup v2 the upstream default stands")
	}
}

func TestKubeProxyConfiguration(t *testing.T) {
	p := &KubeProxy{Layout: testLayout(t), Kubeconfig: "/kp.conf", NodeName: "n1", Mode: "nftables", PodCIDR: "10.42.0.0/16"}
	c := p.configuration(-10)
	switch {
	case c.Mode != kubeproxyv1alpha1.ProxyMode("nftables"):
		t.Errorf("mode %q", c.Mode)
	case c.HostnameOverride != "n1" || c.ClusterCIDR != "10.42.0.0/16" || c.DetectLocalMode != "ClusterCIDR":
		t.Errorf("node %q cluster CIDR %q detect-local %q", c.HostnameOverride, c.ClusterCIDR, c.DetectLocalMode)
	case c.ClientConnection.Kubeconfig != "/kp.conf":
		t.Errorf("kubeconfig %q", c.ClientConnection.Kubeconfig)
	case c.HealthzBindAddress != "127.0.0.1:10256" || c.MetricsBindAddress != "127.0.0.1:10249":
		t.Errorf("health %q metrics %q must stay on loopback", c.HealthzBindAddress, c.MetricsBindAddress)
	case c.Conntrack.MaxPerCore == nil || *c.Conntrack.MaxPerCore != 0:
		t.Error("conntrack limits must not be written (host-wide, fails in a network namespace)")
	case c.OOMScoreAdj == nil || *c.OOMScoreAdj != -10:
		t.Error("kube-proxy must keep the process's own oom_score_adj")
	}
}

func TestKubeProxyWaitsForTheNodesCurrentIP(t *testing.T) {
	node := &corev1.Node{Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
		{Type: corev1.NodeHostName, Address: "n1"},
		{Type: corev1.NodeInternalIP, Address: "10.0.0.11"},
	}}}
	if !showsIP(node, "10.0.0.11") {
		t.Error("the Node's InternalIP must count")
	}
	if showsIP(node, "10.0.0.150") {
		t.Error("a Node still showing the previous run's IP must not count: kube-proxy would exit when it changes")
	}
	if showsIP(&corev1.Node{}, "10.0.0.11") {
		t.Error("a Node without addresses must not count")
	}
}

func TestPodResolvConf(t *testing.T) {
	files := map[string]string{}
	read := func(name string) []byte { return []byte(files[name]) }
	files["/etc/resolv.conf"] = "search example.com\nnameserver 127.0.0.53\nnameserver ::1\noptions edns0\n"
	files["/run/systemd/resolve/resolv.conf"] = "nameserver 192.0.2.53\n"
	if content, source := PodResolvConf(read); source != "/run/systemd/resolve/resolv.conf" || !strings.Contains(content, "192.0.2.53") {
		t.Errorf("systemd-resolved host: %q from %q", content, source)
	}
	files["/etc/resolv.conf"] = "nameserver 127.0.0.1\nnameserver 198.51.100.1\n"
	if content, source := PodResolvConf(read); source != "/etc/resolv.conf" || strings.Contains(content, "127.0.0.1") || !strings.Contains(content, "198.51.100.1") {
		t.Errorf("mixed: %q from %q", content, source)
	}
	delete(files, "/run/systemd/resolve/resolv.conf")
	files["/etc/resolv.conf"] = "nameserver 127.0.0.53\n"
	if content, source := PodResolvConf(read); source != "" || content != "nameserver 8.8.8.8\n" {
		t.Errorf("only loopback: %q from %q", content, source)
	}
}
