// Package datadir is the one place that knows where a monokube data dir
// keeps each file and directory, and guards it: one process per data dir.
// No other package joins paths under a data dir.
package datadir

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// runBase holds each data dir's sockets and runtime state.
const runBase = "/run/monokube"

// MaxSocketPath is the unix socket path limit (sun_path, 108 bytes) less
// its terminator.
const MaxSocketPath = 107

// Layout is where one server or node keeps its files. Everything lives in
// the data dir except sockets and runtime state, which go to a short
// directory under /run: unix socket paths are limited to 108 bytes
// (containerd's shim socket dir to 42), and a deep data dir would overflow
// them.
type Layout struct {
	// Dir is the absolute data dir.
	Dir string
	// Run is /run/monokube/<8 hex of Dir>: unique per data dir, so two
	// nodes on one machine never share sockets.
	Run string
}

// New makes dir absolute and derives the layout from it.
func New(dir string) (Layout, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Layout{}, fmt.Errorf("data dir %q: %w", dir, err)
	}
	sum := sha256.Sum256([]byte(abs))
	return Layout{Dir: abs, Run: filepath.Join(runBase, hex.EncodeToString(sum[:4]))}, nil
}

func (l Layout) path(elem ...string) string {
	return filepath.Join(append([]string{l.Dir}, elem...)...)
}

// Files every role has.

func (l Layout) LockFile() string { return l.path("monokube.lock") }

// PayloadDirName is where the launcher unpacks the program for root,
// inside the data dir (package payload spells it too, to stay small; a
// test checks they agree). It is the launcher's, not the node's state: it
// exists before any command runs, so "is this data dir empty" skips it.
const PayloadDirName = "payload"

// RestoreMarker exists while `restore` moves an archive's files into the
// data dir; a start that finds it refuses (the state is half restored).
func (l Layout) RestoreMarker() string { return l.path(".restore-incomplete") }

// StateEntries lists what the data dir holds besides the launcher's
// payload: empty means a fresh data dir, whatever the launcher unpacked.
func (l Layout) StateEntries() ([]string, error) {
	entries, err := os.ReadDir(l.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read data dir: %w", err)
	}
	var names []string
	for _, entry := range entries {
		if entry.Name() != PayloadDirName {
			names = append(names, entry.Name())
		}
	}
	return names, nil
}

// CheckNoPartialRestore refuses a data dir a restore was moving files
// into when it stopped: starting on half the archive would, for one, make
// a new CA beside the restored datastore.
func (l Layout) CheckNoPartialRestore() error {
	if _, err := os.Lstat(l.RestoreMarker()); err == nil {
		return fmt.Errorf("a restore into %s did not finish (%s exists): remove everything in it except %s/ and run `monokube restore` again",
			l.Dir, l.RestoreMarker(), PayloadDirName)
	}
	return nil
}

// Server files.

func (l Layout) PKIDir() string     { return l.path("pki") }
func (l Layout) DBFile() string     { return l.path("db", "state.db") }
func (l Layout) KineSocket() string { return l.path("run", "kine.sock") }

// ComponentFlags is what the running control plane's components started
// with, for `check cis` (controlplane.FlagRecord).
func (l Layout) ComponentFlags() string { return l.path("run", "component-flags.json") }

func (l Layout) AdvertisedURLFile() string { return l.path("advertised-url") }

// ServerRecordFile records which config file and datastore the server
// on this data dir runs with, for commands given only --data-dir (backup).
func (l Layout) ServerRecordFile() string { return l.path("server.json") }

// EtcdDir is the embedded etcd member's data; EtcdPKIDir its certificates.
func (l Layout) EtcdDir() string    { return l.path("etcd") }
func (l Layout) EtcdPKIDir() string { return l.path("pki", "etcd") }

// EtcdURLFile records the embedded etcd's local client URL for the
// commands that talk to it (etcd member-list, backup).
func (l Layout) EtcdURLFile() string { return l.path("db", "etcd-url") }

// EtcdRestoreFile is an etcd snapshot staged by restore: the next start
// turns it into this server's member, named and addressed as configured.
func (l Layout) EtcdRestoreFile() string { return l.path("db", "etcd-restore.snapshot") }

// RestoredConfigFile is the config a restored backup carried.
func (l Layout) RestoredConfigFile() string { return l.path("restored", "monokube.yaml") }

// SnapshotsDir holds scheduled backups.
func (l Layout) SnapshotsDir() string { return l.path("snapshots") }

// ManifestsDir holds the stacks the server applies to the cluster: the
// add-ons it writes and the user's own files.
func (l Layout) ManifestsDir() string { return l.path("manifests") }

// StaticChartsDir holds Helm charts shipped with the server, which a
// HelmChart names as https://%{KUBERNETES_API}%/static/charts/<file>.
func (l Layout) StaticChartsDir() string { return l.path("static", "charts") }

// FlexVolumeDir is shared by the controller-manager and the kubelet.
func (l Layout) FlexVolumeDir() string { return l.path("kubelet-plugins", "volume", "exec") }

// Node files: configuration written for operators to read, credentials.

func (l Layout) AgentDir() string            { return l.path("agent") }
func (l Layout) AgentPKIDir() string         { return l.path("agent", "pki") }
func (l Layout) NodeRecordFile() string      { return l.path("agent", "node.json") }
func (l Layout) ClusterSettingsFile() string { return l.path("agent", "cluster.json") }

// RegistrySettingsFile is a worker's copy of the cluster's registry
// settings (credentials included: 0600).
func (l Layout) RegistrySettingsFile() string { return l.path("agent", "registries.json") }
func (l Layout) APIServersFile() string       { return l.path("agent", "api-servers.json") }
func (l Layout) APIBalancerLog() string       { return l.path("agent", "api-balancer.log") }
func (l Layout) ImportRecordFile() string     { return l.path("agent", "images-imported.json") }
func (l Layout) KubeletConfigFile() string    { return l.path("agent", "kubelet.yaml") }
func (l Layout) KubeProxyConfigFile() string  { return l.path("agent", "kube-proxy.yaml") }
func (l Layout) ResolvConf() string           { return l.path("agent", "etc", "resolv.conf") }
func (l Layout) ContainerdConfigFile() string {
	return l.path("agent", "etc", "containerd", "config.toml")
}
func (l Layout) RegistryConfigDir() string { return l.path("agent", "etc", "containerd", "certs.d") }
func (l Layout) FlannelNetConf() string    { return l.path("agent", "etc", "flannel", "net-conf.json") }
func (l Layout) CNIConfDir() string        { return l.path("agent", "etc", "cni", "net.d") }
func (l Layout) CNIIPAMDir() string        { return l.path("cni", "networks") }

// WireGuardKey is the node's WireGuard private key (flannel's format), kept
// across restarts so peers need not learn a new one.
func (l Layout) WireGuardKey() string { return l.path("agent", "etc", "flannel", "wireguard.key") }

// Node state.

// BinRoot holds the executables unpacked from the binary, one directory per
// content hash.
func (l Layout) BinRoot() string        { return l.path("bin") }
func (l Layout) ContainerdRoot() string { return l.path("containerd") }
func (l Layout) ImagesDir() string      { return l.path("images") }
func (l Layout) StorageDir() string     { return l.path("storage") }
func (l Layout) StaticPodsDir() string  { return l.path("static-pods") }
func (l Layout) PodLogsDir() string     { return l.path("logs", "pods") }
func (l Layout) AuditLog() string       { return l.path("logs", "audit.log") }
func (l Layout) KubeletRoot() string    { return l.path("kubelet") }
func (l Layout) KubeletPKIDir() string  { return l.path("kubelet", "pki") }

// Runtime state under Run.

func (l Layout) ContainerdState() string  { return filepath.Join(l.Run, "containerd") }
func (l Layout) ContainerdSocket() string { return filepath.Join(l.Run, "containerd.sock") }
func (l Layout) ShimSockets() string      { return filepath.Join(l.Run, "s") }
func (l Layout) RuncRoot() string         { return filepath.Join(l.Run, "runc") }

// ImageGateSocket serves the kubelet's CRI image service (node.imageGate).
func (l Layout) ImageGateSocket() string { return filepath.Join(l.Run, "images.sock") }

// EgressSocket is where the API server's egress proxy listens (package
// tunnel): a unix socket only root reaches.
func (l Layout) EgressSocket() string { return filepath.Join(l.Run, "egress.sock") }

// APIBalancerSocket and APIBalancerPIDFile belong to the worker's API
// balancer process, which outlives the worker's restarts.
func (l Layout) APIBalancerSocket() string  { return filepath.Join(l.Run, "api-balancer.sock") }
func (l Layout) APIBalancerPIDFile() string { return filepath.Join(l.Run, "api-balancer.pid") }

// ComponentStates is where the running process publishes its components'
// lifecycle states (component.StatesFile) for `monokube status`.
func (l Layout) ComponentStates() string { return filepath.Join(l.Run, "components.json") }

// KubeProxyRunConfig is the copy of kube-proxy.yaml kube-proxy reads. It
// watches the file it was given and ends (with it the process) when the
// file changes, so an operator's edit of the one in the data dir must not
// reach it.
func (l Layout) KubeProxyRunConfig() string { return filepath.Join(l.Run, "kube-proxy.yaml") }

// WriteAdvertisedURL records the API URL this server tells remote users, so
// `kubeconfig admin` and `token create` can print it without re-detecting
// addresses (which may differ in another network namespace).
func (l Layout) WriteAdvertisedURL(url string) error {
	if err := os.WriteFile(l.AdvertisedURLFile(), []byte(url+"\n"), 0o644); err != nil {
		return fmt.Errorf("record advertised URL: %w", err)
	}
	return nil
}

// AdvertisedURL is the API URL the server in this data dir last advertised.
func (l Layout) AdvertisedURL() (string, error) {
	raw, err := os.ReadFile(l.AdvertisedURLFile())
	if err != nil {
		return "", fmt.Errorf("read advertised API URL (has the server started?): %w", err)
	}
	return strings.TrimSpace(string(raw)), nil
}

// CheckRemovable refuses to let `reset` delete a directory that is not a
// monokube data dir: the root, or one with neither a lock file nor the pki
// or agent directories every server and node creates. A data dir that does
// not exist is fine: there is nothing to remove.
func (l Layout) CheckRemovable() error {
	if l.Dir == "/" || filepath.Dir(l.Dir) == l.Dir {
		return fmt.Errorf("--data-dir %s is the file system root; refusing to remove it", l.Dir)
	}
	info, err := os.Lstat(l.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("--data-dir %s: %w", l.Dir, err)
	}
	if !info.IsDir() {
		return fmt.Errorf("--data-dir %s is not a directory; refusing to remove it", l.Dir)
	}
	for _, marker := range []string{l.LockFile(), l.PKIDir(), l.AgentDir()} {
		if _, err := os.Lstat(marker); err == nil {
			return nil
		}
	}
	return fmt.Errorf("--data-dir %s does not look like a monokube data dir (no monokube.lock, pki/ or agent/); refusing to remove it", l.Dir)
}

// MoveLegacyStaticPods moves static pods from <data-dir>/manifests/pods,
// where monokube kept them before the manifests directory applied stacks,
// to StaticPodsDir: left there they would be applied as a stack of Pods.
func (l Layout) MoveLegacyStaticPods() error {
	legacy := l.path("manifests", "pods")
	if _, err := os.Stat(legacy); err != nil {
		return nil
	}
	if _, err := os.Stat(l.StaticPodsDir()); err == nil {
		return fmt.Errorf("static pods are in both %s and %s; move them into %s", legacy, l.StaticPodsDir(), l.StaticPodsDir())
	}
	if err := os.Rename(legacy, l.StaticPodsDir()); err != nil {
		return fmt.Errorf("move static pods to %s: %w", l.StaticPodsDir(), err)
	}
	return nil
}
