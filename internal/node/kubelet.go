package node

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	"k8s.io/klog/v2"
	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	kubeletapp "k8s.io/kubernetes/cmd/kubelet/app"
	kubeletoptions "k8s.io/kubernetes/cmd/kubelet/app/options"
	kubeletconfig "k8s.io/kubernetes/pkg/kubelet/apis/config"
	kubeletscheme "k8s.io/kubernetes/pkg/kubelet/apis/config/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/monokube/monokube/internal/cgroups"
	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/datadir"
	"github.com/monokube/monokube/internal/pki"
)

// healthzPort is the kubelet's plain-HTTP health port on 127.0.0.1.
const healthzPort = 10248

// Kubelet runs the kubelet in this process.
type Kubelet struct {
	Layout datadir.Layout
	// Kubeconfig is the kubelet's client identity; CAFile verifies clients
	// of its own API (the API server).
	Kubeconfig string
	CAFile     string
	// ServingCert and ServingKey are a serving certificate issued by the
	// server itself. Without them the kubelet asks the cluster for one
	// (and rotates it), and rotates its client certificate too: a worker.
	ServingCert, ServingKey string
	Identity                Identity
	NodeIP                  string
	Cgroups                 cgroups.Mode
	// SystemdCgroups selects the kubelet's systemd cgroup driver; it must
	// match containerd's runc setting.
	SystemdCgroups bool
	ClusterDNS     string
	ClusterDomain  string
	// CIS protects the kernel's defaults and allows strong TLS ciphers only
	// (CIS benchmark 4.2.6, 4.2.12); sysinfo checks the kernel first.
	CIS bool
	// StartAfter, when set, is waited for before the kubelet starts: until
	// the pause image is imported, and in a server's process until the
	// controller-manager has initialised its volume plugins too (see
	// ControllerManager.ControllersBuilt).
	StartAfter func(context.Context) error

	component.Task
	server *kubeletoptions.KubeletServer
}

var _ component.Component = (*Kubelet)(nil)

func (k *Kubelet) Name() string { return "kubelet" }

// configuration is the kubelet's config, starting from the secure v1beta1
// defaults (no anonymous access, webhook authorization, no read-only port).
// It reads nothing from the host: resolvConf and oomScoreAdj come in.
func (k *Kubelet) configuration(resolvConf string, oomScoreAdj int32) *kubeletv1beta1.KubeletConfiguration {
	config := &kubeletv1beta1.KubeletConfiguration{
		TypeMeta:          metav1.TypeMeta{APIVersion: "kubelet.config.k8s.io/v1beta1", Kind: "KubeletConfiguration"},
		StaticPodPath:     k.Layout.StaticPodsDir(),
		Address:           "0.0.0.0",
		ReadOnlyPort:      0,
		TLSCertFile:       k.ServingCert,
		TLSPrivateKeyFile: k.ServingKey,
		Authentication: kubeletv1beta1.KubeletAuthentication{
			X509:      kubeletv1beta1.KubeletX509Authentication{ClientCAFile: k.CAFile},
			Webhook:   kubeletv1beta1.KubeletWebhookAuthentication{Enabled: ptr.To(true)},
			Anonymous: kubeletv1beta1.KubeletAnonymousAuthentication{Enabled: ptr.To(false)},
		},
		Authorization:      kubeletv1beta1.KubeletAuthorization{Mode: kubeletv1beta1.KubeletAuthorizationModeWebhook},
		HealthzBindAddress: "127.0.0.1",
		HealthzPort:        ptr.To[int32](healthzPort),
		ClusterDomain:      k.ClusterDomain,
		ClusterDNS:         []string{k.ClusterDNS},
		CgroupRoot:         k.Identity.CgroupRoot,
		CgroupDriver:       cgroupDriver(k.SystemdCgroups),
		CgroupsPerQOS:      ptr.To(true),
		// Without CAP_SYS_RESOURCE a negative score fails; the kubelet
		// applies this to the whole monokube process, so keep what it has.
		OOMScoreAdj:              ptr.To(oomScoreAdj),
		ContainerRuntimeEndpoint: "unix://" + k.Layout.ContainerdSocket(),
		// containerd's image service behind the gate that holds a pull of
		// a bundled image until its import ends (imageGate).
		ImageServiceEndpoint: "unix://" + k.Layout.ImageGateSocket(),
		ResolverConfig:       ptr.To(resolvConf),
		// All five signals, or the unnamed ones are switched off.
		EvictionHard: map[string]string{
			"memory.available": "100Mi", "nodefs.available": diskEviction, "imagefs.available": diskEviction,
			"nodefs.inodesFree": diskEviction, "imagefs.inodesFree": diskEviction,
		},
		FailSwapOn:          ptr.To(false),
		RegisterWithTaints:  k.Identity.Taints,
		VolumePluginDir:     k.Layout.FlexVolumeDir(),
		PodLogsDir:          k.Layout.PodLogsDir(),
		SerializeImagePulls: ptr.To(false),
		// Each new pod costs the kubelet about five API calls (its
		// service-account token, status patches, the pod); at upstream's
		// 50/s with a burst of 100, a hundred pods queued behind the
		// limiter for seconds. The API server's priority and fairness
		// still guards it from many nodes at once.
		KubeAPIQPS:   ptr.To[int32](kubeletAPIQPS),
		KubeAPIBurst: 2 * kubeletAPIQPS,
		// A server's node gets certificates from monokube at start; a
		// worker's kubelet requests and rotates them through the cluster.
		RotateCertificates: k.ServingCert == "",
		ServerTLSBootstrap: k.ServingCert == "",
	}
	if k.CIS {
		config.ProtectKernelDefaults = true
		config.TLSCipherSuites = pki.StrongCipherSuites
	}
	if k.Cgroups == cgroups.V1 {
		// kubelet 1.37 refuses cgroup v1 unless told otherwise.
		config.FailCgroupV1 = ptr.To(false)
	}
	return config
}

// kubeletAPIQPS is the kubelet's client rate limit, as the scheduler's
// and controller-manager's.
const kubeletAPIQPS = 200

// DiskEvictionPercent is the share of a file system's size (and inodes)
// under which the kubelet evicts pods and removes images.
const DiskEvictionPercent = 5

var diskEviction = fmt.Sprintf("%d%%", DiskEvictionPercent)

func (k *Kubelet) Init(context.Context) error {
	if err := k.preflight(); err != nil {
		return err
	}
	if err := k.Layout.MoveLegacyStaticPods(); err != nil {
		return err
	}
	for _, dir := range []string{k.Layout.StaticPodsDir(), k.Layout.KubeletRoot(), k.Layout.PodLogsDir()} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
	}
	return nil
}

func (k *Kubelet) Start(ctx context.Context) error {
	if k.StartAfter != nil {
		waited := time.Now()
		if err := k.StartAfter(ctx); err != nil {
			return fmt.Errorf("waiting to start the kubelet: %w", err)
		}
		klog.InfoS("Kubelet may start: the pause image is in (and on a server the controller-manager's controllers are built)", "waited", time.Since(waited).Round(time.Millisecond))
	}
	resolvConf, err := k.writeResolvConf()
	if err != nil {
		return err
	}
	oomScoreAdj, err := currentOOMScoreAdj()
	if err != nil {
		return err
	}
	versioned := k.configuration(resolvConf, oomScoreAdj)
	// Written for operators to read; the kubelet gets the object directly.
	if out, err := yaml.Marshal(versioned); err == nil {
		_ = os.WriteFile(k.Layout.KubeletConfigFile(), out, 0o600)
	}
	scheme, _, err := kubeletscheme.NewSchemeAndCodecs()
	if err != nil {
		return fmt.Errorf("kubelet scheme: %w", err)
	}
	scheme.Default(versioned)
	internal := &kubeletconfig.KubeletConfiguration{}
	if err := scheme.Convert(versioned, internal, nil); err != nil {
		return fmt.Errorf("kubelet config: %w", err)
	}
	flags := kubeletoptions.NewKubeletFlags()
	flags.KubeConfig = k.Kubeconfig
	flags.HostnameOverride = k.Identity.Name
	flags.NodeIP = k.NodeIP
	flags.NodeLabels = k.Identity.Labels
	flags.RootDirectory = k.Layout.KubeletRoot()
	flags.CertDirectory = k.Layout.KubeletPKIDir()
	k.server = &kubeletoptions.KubeletServer{KubeletFlags: *flags, KubeletConfiguration: *internal}
	if err := kubeletoptions.ValidateKubeletServer(k.server); err != nil {
		return fmt.Errorf("kubelet settings: %w", err)
	}
	kubeletCtx := klog.NewContext(ctx, klog.Background().WithName("kubelet"))
	deps, err := kubeletapp.UnsecuredDependencies(kubeletCtx, k.server, utilfeature.DefaultFeatureGate)
	if err != nil {
		return fmt.Errorf("kubelet dependencies: %w", err)
	}
	k.Go(kubeletCtx, func(ctx context.Context) error {
		return kubeletapp.Run(ctx, k.server, deps, utilfeature.DefaultFeatureGate)
	})
	return nil
}

// Ready waits for the kubelet's health endpoint.
func (k *Kubelet) Ready(ctx context.Context) error {
	url := "http://127.0.0.1:" + strconv.Itoa(healthzPort) + "/healthz"
	client := &http.Client{Timeout: time.Second}
	return wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		resp, err := client.Get(url)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

// Stop cancels the kubelet. Upstream leaves some of its goroutines running
// until the process exits; containers keep running by design.
func (k *Kubelet) Stop() error {
	if err := k.Task.Stop(5 * time.Second); err != nil {
		klog.InfoS("Kubelet still stopping; the process exit ends it", "reason", err.Error())
	}
	return nil
}

// writeResolvConf gives pods (and CoreDNS, which forwards to it) the
// host's resolvers.
func (k *Kubelet) writeResolvConf() (string, error) {
	path := k.Layout.ResolvConf()
	content, source := PodResolvConf(func(name string) []byte {
		raw, _ := os.ReadFile(name)
		return raw
	})
	if source == "" {
		klog.InfoS("The host has no resolver pods can reach (only loopback ones, or none); pods and CoreDNS forward to 8.8.8.8", "tried", strings.Join(resolvConfCandidates, ", "))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		return "", fmt.Errorf("write resolv.conf: %w", err)
	}
	return path, nil
}

// resolvConfCandidates are read in order: the host's file, then
// systemd-resolved's list of real upstreams (its /etc/resolv.conf names
// only its own 127.0.0.53).
var resolvConfCandidates = []string{"/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"}

// PodResolvConf is the first candidate with a nameserver left once
// loopback ones (which inside a pod would be the pod itself) are dropped,
// and which file it came from; with none, 8.8.8.8 as k3s does, and "".
func PodResolvConf(read func(string) []byte) (content, source string) {
	for _, candidate := range resolvConfCandidates {
		var kept []string
		servers := 0
		for _, line := range strings.Split(string(read(candidate)), "\n") {
			fields := strings.Fields(line)
			if len(fields) >= 2 && fields[0] == "nameserver" {
				if ip := net.ParseIP(fields[1]); ip == nil || ip.IsLoopback() {
					continue
				}
				servers++
			}
			kept = append(kept, line)
		}
		if servers > 0 {
			return strings.Join(kept, "\n"), candidate
		}
	}
	return "nameserver 8.8.8.8\n", ""
}

func currentOOMScoreAdj() (int32, error) {
	raw, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return 0, fmt.Errorf("read oom_score_adj: %w", err)
	}
	value, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	return int32(value), err
}

func cgroupDriver(systemd bool) string {
	if systemd {
		return "systemd"
	}
	return "cgroupfs"
}
