package config

// Defaults shared with the CLI, so help texts and the config agree.
const (
	DefaultDataDir    = "/var/lib/monokube"
	DefaultConfigPath = "/etc/monokube/monokube.yaml"
	DefaultAPIPort    = 6443
	// etcd's own ports.
	DefaultEtcdClientPort = 2379
	DefaultEtcdPeerPort   = 2380
)

// Default returns the complete default ClusterConfig.
func Default() *ClusterConfig {
	return &ClusterConfig{
		APIVersion: APIVersion,
		Kind:       Kind,
		Metadata:   ObjectMeta{Name: "monokube"},
		Spec: Spec{
			API: APISpec{
				Port:      DefaultAPIPort,
				SANs:      []string{},
				ExtraArgs: map[string]string{},
				// baseline stops the known privilege escalations while
				// ordinary workloads run unchanged; restricted is reported.
				PodSecurity: PodSecuritySpec{Enforce: "baseline", Audit: "restricted", Warn: "restricted"},
				// As RKE2's defaults for its audit log.
				Audit: AuditSpec{MaxSizeMB: 100, MaxBackups: 10, MaxAgeDays: 30},
			},
			SecretsEncryption: SecretsEncryptionSpec{Provider: "secretbox", KMS: KMSSpec{Timeout: "3s"}},
			Storage: StorageSpec{
				Type: StorageSQLite,
				Etcd: EtcdSpec{Endpoints: []string{}, ClientPort: DefaultEtcdClientPort, PeerPort: DefaultEtcdPeerPort},
				// As k3s: twice a day, the last five kept.
				Snapshots: SnapshotSpec{Schedule: "0 */12 * * *", Retention: 5},
			},
			Network: NetworkSpec{
				PodCIDR:       "10.42.0.0/16",
				ServiceCIDR:   "10.43.0.0/16",
				ClusterDomain: "cluster.local",
				ClusterDNS:    "10.43.0.10",
				KubeProxy:     KubeProxySpec{Mode: ProxyIPTables},
				Provider:      ProviderFlannel,
				Flannel:       FlannelSpec{Backend: FlannelVXLAN},
				// A server that is not a node needs the tunnels to reach
				// kubelets and pods; k3s defaults to agent, which leaves
				// such a server without metrics or webhooks.
				EgressSelectorMode: EgressPod,
			},
			ControllerManager: ComponentSpec{ExtraArgs: map[string]string{}},
			Scheduler:         ComponentSpec{ExtraArgs: map[string]string{}},
			Registries:        RegistriesSpec{Mirrors: map[string]RegistryMirror{}, Configs: map[string]RegistryConfig{}},
			PKI:               PKISpec{LeafValidity: "8760h", RenewPercentLeft: 20},
			Worker:            WorkerSpec{Labels: []string{}, Taints: []string{}},
			Addons: AddonsSpec{
				CoreDNS:        AddonSpec{Enabled: on()},
				MetricsServer:  AddonSpec{Enabled: on()},
				LocalStorage:   LocalStorageSpec{Enabled: on()},
				ServiceLB:      AddonSpec{Enabled: on()},
				HelmController: AddonSpec{Enabled: on()},
				NetworkPolicy:  AddonSpec{Enabled: on()},
			},
		},
	}
}

// on is a fresh true for each add-on switch, so that turning one off
// never turns off another.
func on() *bool {
	enabled := true
	return &enabled
}
