// Package config holds the ClusterConfig, the one versioned object that
// describes a monokube cluster: its defaults, loading and validation.
package config

// APIVersion and Kind identify a ClusterConfig document.
const (
	APIVersion = "monokube.io/v1beta1"
	Kind       = "ClusterConfig"
)

// ClusterConfig is the whole configuration of a monokube node, as read from
// /etc/monokube/monokube.yaml or --config.
type ClusterConfig struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   ObjectMeta `json:"metadata"`
	Spec       Spec       `json:"spec"`
}

// ObjectMeta names the cluster.
type ObjectMeta struct {
	Name string `json:"name"`
}

// Spec groups the settings by the part of the cluster they shape.
type Spec struct {
	API               APISpec       `json:"api"`
	Storage           StorageSpec   `json:"storage"`
	Network           NetworkSpec   `json:"network"`
	ControllerManager ComponentSpec `json:"controllerManager"`
	Scheduler         ComponentSpec `json:"scheduler"`
	PKI               PKISpec       `json:"pki"`
	Worker            WorkerSpec    `json:"worker"`
	Addons            AddonsSpec    `json:"addons"`
	// Registries are the cluster's registry mirrors, credentials and TLS,
	// in k3s's registries.yaml format; servers hand them to every node.
	Registries RegistriesSpec `json:"registries"`
	// SecretsEncryption chooses how spec.api.encryptionAtRest encrypts.
	SecretsEncryption SecretsEncryptionSpec `json:"secretsEncryption"`
	// Profile hardens the cluster to a benchmark: "" (none) or "cis",
	// the CIS Kubernetes Benchmark (ApplyProfile; `monokube check cis`).
	Profile string `json:"profile"`
}

// WorkerSpec configures this machine as a node (server --enable-worker, worker).
type WorkerSpec struct {
	// CgroupRoot puts every cgroup the node creates (kubelet's pods and QoS
	// classes, containers) below this path, in every hierarchy. Empty means
	// the hierarchy roots, as on a dedicated machine.
	CgroupRoot string `json:"cgroupRoot"`
	// NodeName overrides the hostname as the Node's name.
	NodeName string `json:"nodeName"`
	// Labels ("key=value") and Taints ("key=value:Effect") the Node
	// registers with. Labels under kubernetes.io and k8s.io are mostly
	// reserved (NodeRestriction); the kubelet names the ones it refuses.
	Labels []string `json:"labels"`
	Taints []string `json:"taints"`
}

// APISpec configures the Kubernetes API server.
type APISpec struct {
	// Address is where the API server listens and what it advertises to the
	// cluster. Empty means listen on every interface and advertise the
	// machine's first non-loopback address.
	Address string `json:"address"`
	// Port is the HTTPS port of the API server.
	Port int `json:"port"`
	// SANs are extra names and addresses for the API server certificate.
	SANs []string `json:"sans"`
	// EncryptionAtRest encrypts Secrets in the datastore with keys kept in
	// <data-dir>/pki/encryption-config.yaml (spec.secretsEncryption says
	// how; `monokube secrets-encrypt` rotates them).
	EncryptionAtRest bool `json:"encryptionAtRest"`
	// PodSecurity is the Pod Security Admission level for namespaces that
	// do not set their own pod-security.kubernetes.io labels.
	PodSecurity PodSecuritySpec `json:"podSecurity"`
	// Audit is the API server's record of who did what (off by default).
	Audit AuditSpec `json:"audit"`
	// ExtraArgs are kube-apiserver flags (without "--") that override ours.
	ExtraArgs map[string]string `json:"extraArgs"`
}

// SecretsEncryptionSpec is how new encryption keys are made: the first one,
// and each one `monokube secrets-encrypt rotate` makes.
type SecretsEncryptionSpec struct {
	// Provider is secretbox (default, XSalsa20-Poly1305), aescbc, aesgcm
	// or kms (a KMS v2 plugin of an external key manager).
	Provider string `json:"provider"`
	// KMS is the plugin, when Provider is kms.
	KMS KMSSpec `json:"kms"`
}

// KMSSpec locates a KMS v2 plugin.
type KMSSpec struct {
	// Endpoint is the plugin's gRPC socket, "unix:///path/to/socket".
	Endpoint string `json:"endpoint"`
	// Timeout bounds each call to the plugin, as a Go duration.
	Timeout string `json:"timeout"`
}

// AuditSpec is the API server's audit log: a JSON event per request in
// <data-dir>/logs/audit.log, rotated by size, and optionally a webhook.
type AuditSpec struct {
	// Enabled switches the audit log on.
	Enabled bool `json:"enabled"`
	// Policy is an audit.k8s.io/v1 Policy file. Empty: monokube's own
	// (metadata only for Secrets, ConfigMaps and tokens; request bodies
	// for other writes; no health checks, leases or events).
	Policy string `json:"policy"`
	// MaxSizeMB rotates the file when it reaches this size; MaxBackups
	// rotated files are kept, none older than MaxAgeDays (0: no age limit).
	MaxSizeMB  int `json:"maxSizeMB"`
	MaxBackups int `json:"maxBackups"`
	MaxAgeDays int `json:"maxAgeDays"`
	// Webhook is a kubeconfig file naming a remote audit sink that gets
	// the same events in batches, besides the file.
	Webhook string `json:"webhook"`
}

// PodSecuritySpec holds cluster-wide Pod Security Standards levels
// (privileged, baseline, restricted). kube-system is always exempt.
type PodSecuritySpec struct {
	Enforce string `json:"enforce"`
	Audit   string `json:"audit"`
	Warn    string `json:"warn"`
}

// PKISpec sets the life of the certificates monokube issues.
type PKISpec struct {
	// LeafValidity is how long a leaf certificate (not a CA) lives, as a Go
	// duration ("8760h").
	LeafValidity string `json:"leafValidity"`
	// RenewPercentLeft re-issues a leaf at start when less than this
	// percentage of its lifetime remains.
	RenewPercentLeft int `json:"renewPercentLeft"`
}

// Storage types (spec.storage.type).
const (
	// StorageSQLite is kine on a SQLite file: one server, nothing to run.
	StorageSQLite = "sqlite"
	// StorageEtcd is etcd: embedded (one member per server) or external
	// (spec.storage.etcd.endpoints).
	StorageEtcd = "etcd"
	// StoragePostgres and StorageMySQL are kine on an external database
	// that every server shares.
	StoragePostgres = "postgres"
	StorageMySQL    = "mysql"
)

// StorageTypes are the allowed values of spec.storage.type.
var StorageTypes = []string{StorageSQLite, StorageEtcd, StoragePostgres, StorageMySQL}

// StorageSpec selects the datastore behind the API server.
type StorageSpec struct {
	// Type is the datastore kind: sqlite (default), etcd, postgres or mysql.
	Type string `json:"type"`
	// DataSource is the database: for sqlite a file path or a kine
	// "sqlite://" DSN (empty: <data-dir>/db/state.db); for postgres a
	// "postgres://user:password@host:port/db" URL; for mysql
	// "mysql://user:password@tcp(host:port)/db".
	DataSource string `json:"dataSource"`
	// TLS are the client certificate and CA for postgres, mysql or an
	// external etcd.
	TLS StorageTLS `json:"tls"`
	// Etcd configures the embedded etcd, or points at an external one.
	Etcd EtcdSpec `json:"etcd"`
	// Snapshots are the scheduled backups in <data-dir>/snapshots.
	Snapshots SnapshotSpec `json:"snapshots"`
}

// StorageTLS are PEM files for talking to an external datastore.
type StorageTLS struct {
	CAFile   string `json:"caFile"`
	CertFile string `json:"certFile"`
	KeyFile  string `json:"keyFile"`
}

// Set reports whether any TLS file is given.
func (t StorageTLS) Set() bool { return t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" }

// EtcdSpec configures etcd.
type EtcdSpec struct {
	// Endpoints of an external etcd cluster ("https://10.0.0.5:2379");
	// empty runs etcd embedded in this server.
	Endpoints []string `json:"endpoints"`
	// ClientPort and PeerPort of the embedded etcd. Clients are the API
	// server (on loopback) and joining servers (on spec.api.address); peers
	// are the other servers' members.
	ClientPort int `json:"clientPort"`
	PeerPort   int `json:"peerPort"`
}

// Embedded reports whether etcd runs inside this server.
func (s StorageSpec) Embedded() bool { return s.Type == StorageEtcd && len(s.Etcd.Endpoints) == 0 }

// SnapshotSpec schedules backups, as k3s's etcd-snapshot-schedule-cron.
type SnapshotSpec struct {
	// Schedule is a cron expression ("0 */12 * * *"); empty turns
	// scheduled snapshots off.
	Schedule string `json:"schedule"`
	// Retention is how many scheduled snapshots are kept; older ones are
	// deleted.
	Retention int `json:"retention"`
}

// NetworkSpec holds the cluster's address ranges and DNS settings.
type NetworkSpec struct {
	PodCIDR       string        `json:"podCIDR"`
	ServiceCIDR   string        `json:"serviceCIDR"`
	ClusterDomain string        `json:"clusterDomain"`
	ClusterDNS    string        `json:"clusterDNS"`
	KubeProxy     KubeProxySpec `json:"kubeProxy"`
	// Provider connects pods across nodes: flannel (default, embedded) or
	// none (pods reach only their own node, or a network you install).
	Provider string      `json:"provider"`
	Flannel  FlannelSpec `json:"flannel"`
	// EgressSelectorMode is which of the API server's connections into the
	// cluster go through the tunnels the nodes open to it (k3s's setting
	// of the same name): agent, pod (default), cluster or disabled.
	EgressSelectorMode string `json:"egressSelectorMode"`
}

// Egress selector modes (spec.network.egressSelectorMode): what the API
// server sends through the tunnel each node keeps open to it.
const (
	// EgressAgent: connections to a node's own addresses (the kubelet:
	// logs, exec, attach, port-forward, the node proxy).
	EgressAgent = "agent"
	// EgressPod: those, and connections to pods (webhooks and aggregated
	// APIs such as metrics.k8s.io, reached at their endpoints), through the
	// tunnel of the node the pod runs on. The default: a server that is
	// not a node reaches every pod this way.
	EgressPod = "pod"
	// EgressCluster: those, and Service IPs, through any node's tunnel.
	EgressCluster = "cluster"
	// EgressDisabled: the API server dials every address directly.
	EgressDisabled = "disabled"
)

// EgressSelectorModes are the allowed values of spec.network.egressSelectorMode.
var EgressSelectorModes = []string{EgressAgent, EgressPod, EgressCluster, EgressDisabled}

// Pod network providers (spec.network.provider).
const (
	// ProviderFlannel connects the nodes' pod CIDRs with flannel, embedded.
	ProviderFlannel = "flannel"
	// ProviderNone leaves pods reachable only on their own node (or to a
	// network the user installs).
	ProviderNone = "none"
)

// NetworkProviders are the allowed values of spec.network.provider.
var NetworkProviders = []string{ProviderFlannel, ProviderNone}

// Flannel backends (spec.network.flannel.backend).
const (
	FlannelVXLAN  = "vxlan"
	FlannelHostGW = "host-gw"
	// FlannelWireGuard encrypts pod traffic between nodes and needs only
	// one side of each pair reachable (a node behind NAT keeps its path
	// open). k3s spells it wireguard-native; both are accepted.
	FlannelWireGuard       = "wireguard"
	FlannelWireGuardNative = "wireguard-native"
)

// FlannelBackends are the allowed values of spec.network.flannel.backend.
var FlannelBackends = []string{FlannelVXLAN, FlannelHostGW, FlannelWireGuard, FlannelWireGuardNative}

// FlannelSpec configures the embedded flannel.
type FlannelSpec struct {
	// Backend is vxlan (default; works across any IP network), host-gw
	// (plain routes; every node on one L2 segment) or wireguard
	// (encrypted; works through NAT as long as one side of each pair of
	// nodes can be reached).
	Backend string `json:"backend"`
}

// WireGuard reports whether the backend is WireGuard, in either spelling.
func (f FlannelSpec) WireGuard() bool {
	return f.Backend == FlannelWireGuard || f.Backend == FlannelWireGuardNative
}

// Kube-proxy modes (spec.network.kubeProxy.mode).
const (
	ProxyIPTables = "iptables"
	ProxyNFTables = "nftables"
	ProxyIPVS     = "ipvs"
	ProxyDisabled = "disabled"
)

// KubeProxyModes are the allowed values of spec.network.kubeProxy.mode.
var KubeProxyModes = []string{ProxyIPTables, ProxyNFTables, ProxyIPVS, ProxyDisabled}

// PacketFilter is what the node's packet rules are written with (the
// bridge's masquerading, portmap, flannel): nftables when kube-proxy uses
// it, so such a node needs no iptables at all; iptables otherwise.
func (k KubeProxySpec) PacketFilter() string {
	if k.Mode == ProxyNFTables {
		return ProxyNFTables
	}
	return ProxyIPTables
}

// KubeProxySpec selects how Services are implemented on nodes.
type KubeProxySpec struct {
	// Mode is iptables (default), nftables, ipvs or disabled.
	Mode string `json:"mode"`
}

// ComponentSpec carries upstream flags for a control-plane component.
type ComponentSpec struct {
	// ExtraArgs are upstream flags (without "--") that override ours.
	ExtraArgs map[string]string `json:"extraArgs"`
}
