package config

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// doc joins lines into a YAML document, so a test's line numbers can be read
// off the slice: lines[0] is line 1.
func doc(lines ...string) []byte {
	return []byte(strings.Join(lines, "\n") + "\n")
}

// writeConfig writes raw to a file in a fresh temporary directory.
func writeConfig(t *testing.T, raw []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "monokube.yaml")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDefaultIsValid(t *testing.T) {
	if err := Validate(Default(), nil); err != nil {
		t.Fatalf("Validate(Default()) = %v, want nil", err)
	}
}

// TestDefaultRoundTripsThroughYAML checks that what `default-config` prints
// (yaml.Marshal of Default()) names every field, and that Marshal keeps every
// value: Parse starts from Default(), so a dropped field would be refilled
// with its default and go unseen; hence a config where every field differs
// from the default, and a decode of the defaults into a zero struct.
func TestDefaultRoundTripsThroughYAML(t *testing.T) {
	raw, err := yaml.Marshal(Default())
	if err != nil {
		t.Fatal(err)
	}
	var printed map[string]any
	if err := yaml.Unmarshal(raw, &printed); err != nil {
		t.Fatal(err)
	}
	for _, path := range missingFields(reflect.TypeOf(ClusterConfig{}), printed, "") {
		t.Errorf("default config lacks %s:\n%s", path, raw)
	}
	var zero ClusterConfig
	if err := yaml.Unmarshal(raw, &zero); err != nil {
		t.Fatal(err)
	}
	if want := Default(); !reflect.DeepEqual(&zero, want) {
		t.Errorf("defaults decoded into a zero config differ:\n got  %#v\n want %#v\nYAML:\n%s", &zero, want, raw)
	}

	custom := nonDefault()
	// These have one valid value each, so they cannot differ; the
	// zero-struct decode above covers them.
	fixed := map[string]bool{"apiVersion": true, "kind": true}
	for _, path := range equalFields(reflect.ValueOf(*custom), reflect.ValueOf(*Default()), "") {
		if !fixed[path] {
			t.Errorf("nonDefault() leaves %s at its default: the round trip cannot tell it was dropped", path)
		}
	}
	raw, err = yaml.Marshal(custom)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(raw)
	if err != nil {
		t.Fatalf("Parse(Marshal(nonDefault())) error: %v\n%s", err, raw)
	}
	if !reflect.DeepEqual(got, custom) {
		t.Errorf("round trip changed the config:\n got  %#v\n want %#v\nYAML:\n%s", got, custom, raw)
	}
}

// nonDefault is a valid config with every field set to something other
// than its default.
func nonDefault() *ClusterConfig {
	return &ClusterConfig{
		APIVersion: APIVersion,
		Kind:       Kind,
		Metadata:   ObjectMeta{Name: "elsewhere"},
		Spec: Spec{
			API: APISpec{
				Address:          "192.0.2.10",
				Port:             7443,
				SANs:             []string{"api.example.com", "198.51.100.7"},
				EncryptionAtRest: true,
				PodSecurity:      PodSecuritySpec{Enforce: "restricted", Audit: "baseline", Warn: "privileged"},
				// Files the validation finds (the tests run in this dir).
				Audit: AuditSpec{Enabled: true, Policy: "testdata/audit-policy.yaml", MaxSizeMB: 5, MaxBackups: 2, MaxAgeDays: 7,
					Webhook: "testdata/audit-webhook.kubeconfig"},
				ExtraArgs: map[string]string{"v": "3"},
			},
			SecretsEncryption: SecretsEncryptionSpec{Provider: "kms", KMS: KMSSpec{Endpoint: "unix:///run/kms/plugin.sock", Timeout: "10s"}},
			Storage: StorageSpec{
				Type:       StoragePostgres,
				DataSource: "postgres://kube:secret@db.example.com:5432/kubernetes",
				TLS:        StorageTLS{CAFile: "/srv/ca.pem", CertFile: "/srv/client.pem", KeyFile: "/srv/client-key.pem"},
				Etcd:       EtcdSpec{Endpoints: []string{"https://192.0.2.20:2379"}, ClientPort: 12379, PeerPort: 12380},
				Snapshots:  SnapshotSpec{Schedule: "30 3 * * *", Retention: 9},
			},
			Network: NetworkSpec{
				PodCIDR:            "10.100.0.0/16",
				ServiceCIDR:        "10.200.0.0/16",
				ClusterDomain:      "example.internal",
				ClusterDNS:         "10.200.0.53",
				KubeProxy:          KubeProxySpec{Mode: ProxyNFTables},
				Provider:           ProviderNone,
				Flannel:            FlannelSpec{Backend: FlannelHostGW},
				EgressSelectorMode: EgressCluster,
			},
			ControllerManager: ComponentSpec{ExtraArgs: map[string]string{"concurrent-deployment-syncs": "2"}},
			Scheduler:         ComponentSpec{ExtraArgs: map[string]string{"secure-port": "0"}},
			PKI:               PKISpec{LeafValidity: "720h", RenewPercentLeft: 33},
			Worker: WorkerSpec{
				CgroupRoot: "/monokube",
				NodeName:   "edge-1",
				Labels:     []string{"tier=edge"},
				Taints:     []string{"dedicated=edge:NoSchedule"},
			},
			Addons: AddonsSpec{
				CoreDNS:        AddonSpec{Enabled: &no},
				MetricsServer:  AddonSpec{Enabled: &no},
				LocalStorage:   LocalStorageSpec{Enabled: &no, Path: "/srv/volumes"},
				ServiceLB:      AddonSpec{Enabled: &no},
				HelmController: AddonSpec{Enabled: &no},
				NetworkPolicy:  AddonSpec{Enabled: &no},
				Traefik:        AddonSpec{Enabled: &no},
			},
			Registries: RegistriesSpec{
				Mirrors: map[string]RegistryMirror{"docker.io": {Endpoint: []string{"https://mirror.example:5000"}, Rewrite: map[string]string{"^library/(.*)": "hub/$1"}}},
				Configs: map[string]RegistryConfig{"mirror.example:5000": {
					Auth: &RegistryAuth{Username: "u", Password: "p"},
					TLS:  &RegistryTLS{InsecureSkipVerify: true},
				}},
				EmbeddedMirror: true,
			},
			Profile: ProfileCIS,
		},
	}
}

var no = false

// missingFields lists the fields of struct type t (by JSON name, recursing
// into nested structs) that doc lacks.
func missingFields(t reflect.Type, doc map[string]any, prefix string) []string {
	var missing []string
	for i := 0; i < t.NumField(); i++ {
		field := t.Field(i)
		name := strings.Split(field.Tag.Get("json"), ",")[0]
		value, ok := doc[name]
		if !ok {
			missing = append(missing, prefix+name)
			continue
		}
		if field.Type.Kind() == reflect.Struct {
			child, _ := value.(map[string]any)
			missing = append(missing, missingFields(field.Type, child, prefix+name+".")...)
		}
	}
	return missing
}

// equalFields lists the leaf fields (by JSON path) where a and b, values of
// the same struct type, are equal.
func equalFields(a, b reflect.Value, prefix string) []string {
	var equal []string
	for i := 0; i < a.NumField(); i++ {
		field := a.Type().Field(i)
		path := prefix + strings.Split(field.Tag.Get("json"), ",")[0]
		if field.Type.Kind() == reflect.Struct {
			equal = append(equal, equalFields(a.Field(i), b.Field(i), path+".")...)
			continue
		}
		if reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
			equal = append(equal, path)
		}
	}
	return equal
}

func TestPartialFileKeepsOtherDefaults(t *testing.T) {
	raw := doc(
		"spec:",
		"  api:",
		"    port: 7443",
	)
	want := Default()
	want.Spec.API.Port = 7443

	parsed, err := Parse(raw)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if !reflect.DeepEqual(parsed, want) {
		t.Errorf("Parse:\n got  %#v\n want %#v", parsed, want)
	}

	loaded, err := Load(writeConfig(t, raw))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !reflect.DeepEqual(loaded, want) {
		t.Errorf("Load:\n got  %#v\n want %#v", loaded, want)
	}
}

func TestFileSettingsOverrideDefaults(t *testing.T) {
	raw := doc(
		"apiVersion: monokube.io/v1beta1",
		"kind: ClusterConfig",
		"metadata:",
		"  name: lab",
		"spec:",
		"  api:",
		"    address: 192.168.1.10",
		"    sans:",
		"    - k8s.example.com",
		"    - '*.example.com'",
		"    - 10.0.0.1",
		"    extraArgs:",
		"      v: 2",
		"  network:",
		"    podCIDR: 10.244.0.0/16",
		"    serviceCIDR: 10.96.0.0/12",
		"    clusterDNS: 10.96.0.10",
		"    clusterDomain: example.internal",
		"  controllerManager:",
		"    extraArgs:",
		"      node-monitor-grace-period: 20s",
	)
	want := Default()
	want.Metadata.Name = "lab"
	want.Spec.API.Address = "192.168.1.10"
	want.Spec.API.SANs = []string{"k8s.example.com", "*.example.com", "10.0.0.1"}
	want.Spec.API.ExtraArgs = map[string]string{"v": "2"}
	want.Spec.Network = NetworkSpec{
		PodCIDR:       "10.244.0.0/16",
		ServiceCIDR:   "10.96.0.0/12",
		ClusterDomain: "example.internal",
		ClusterDNS:    "10.96.0.10",
		KubeProxy:     KubeProxySpec{Mode: "iptables"},
		Provider:      "flannel",
		Flannel:       FlannelSpec{Backend: "vxlan"},
		// Not in the file: the default stays.
		EgressSelectorMode: "pod",
	}
	want.Spec.ControllerManager.ExtraArgs = map[string]string{"node-monitor-grace-period": "20s"}

	got, err := Load(writeConfig(t, raw))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load:\n got  %#v\n want %#v", got, want)
	}
}

func TestEmptyFileGivesDefaults(t *testing.T) {
	for name, raw := range map[string]string{
		"empty":         "",
		"blank lines":   "\n\n",
		"only comments": "# nothing set here\n",
	} {
		t.Run(name, func(t *testing.T) {
			got, err := Load(writeConfig(t, []byte(raw)))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if want := Default(); !reflect.DeepEqual(got, want) {
				t.Errorf("got %#v, want the defaults %#v", got, want)
			}
		})
	}
}

func TestInvalidFilesReportPathLineAndReason(t *testing.T) {
	tests := []struct {
		name     string
		raw      []byte
		path     string
		line     int
		contains string
	}{
		{
			name:     "unknown top-level field",
			raw:      doc("apiVersion: monokube.io/v1beta1", "kind: ClusterConfig", "specs: {}"),
			path:     "specs",
			line:     3,
			contains: "unknown field",
		},
		{
			name:     "section given twice",
			raw:      doc("spec:", "  api:", "    address: 10.0.0.1", "  api: {extraArgs: {profiling: \"true\"}}"),
			path:     "spec.api",
			line:     4,
			contains: "given twice (first at line 2)",
		},
		{
			name:     "map key given twice",
			raw:      doc("spec:", "  api:", "    extraArgs:", "      profiling: \"true\"", "      profiling: \"false\""),
			path:     "spec.api.extraArgs.profiling",
			line:     5,
			contains: "given twice (first at line 4)",
		},
		{
			name:     "unknown nested field lists the known ones",
			raw:      doc("spec:", "  api:", "    port: 6443", "    adress: 10.0.0.1"),
			path:     "spec.api.adress",
			line:     4,
			contains: "unknown field (known fields: address, port,",
		},
		{
			name:     "field with wrong case suggests the right spelling",
			raw:      doc("spec:", "  network:", "    podCidr: 10.42.0.0/16"),
			path:     "spec.network.podCidr",
			line:     3,
			contains: `did you mean "podCIDR"?`,
		},
		{
			name:     "unknown profile",
			raw:      doc("spec:", "  profile: stig"),
			path:     "spec.profile",
			line:     2,
			contains: `must be "" (none) or "cis", got "stig"`,
		},
		{
			name:     "unknown encryption provider",
			raw:      doc("spec:", "  secretsEncryption:", "    provider: aes"),
			path:     "spec.secretsEncryption.provider",
			line:     3,
			contains: `must be one of secretbox, aescbc, aesgcm, kms, got "aes"`,
		},
		{
			name:     "kms provider without its plugin",
			raw:      doc("spec:", "  secretsEncryption:", "    provider: kms", "    kms:", "      endpoint: /run/kms.sock"),
			path:     "spec.secretsEncryption.kms.endpoint",
			line:     5,
			contains: `must be the plugin's socket as "unix:///path/to/socket"`,
		},
		{
			name:     "audit log rotated at zero bytes",
			raw:      doc("spec:", "  api:", "    audit:", "      enabled: true", "      maxSizeMB: 0"),
			path:     "spec.api.audit.maxSizeMB",
			line:     5,
			contains: "must be at least 1, got 0",
		},
		{
			name:     "audit policy file that is not there",
			raw:      doc("spec:", "  api:", "    audit:", "      policy: /nonexistent/audit-policy.yaml"),
			path:     "spec.api.audit.policy",
			line:     4,
			contains: `must be a readable file, got "/nonexistent/audit-policy.yaml"`,
		},
		{
			name:     "node label without a value",
			raw:      doc("spec:", "  worker:", "    labels:", "    - tier"),
			path:     "spec.worker.labels[0]",
			line:     4,
			contains: `label "tier": want key=value`,
		},
		{
			name:     "node taint with an unknown effect",
			raw:      doc("spec:", "  worker:", "    taints:", "    - dedicated=edge:Sometimes"),
			path:     "spec.worker.taints[0]",
			line:     4,
			contains: "Sometimes",
		},
		{
			name:     "unknown pod network provider",
			raw:      doc("spec:", "  network:", "    provider: calico"),
			path:     "spec.network.provider",
			line:     3,
			contains: `must be one of flannel, none, got "calico"`,
		},
		{
			name:     "unknown flannel backend",
			raw:      doc("spec:", "  network:", "    flannel:", "      backend: ipsec"),
			path:     "spec.network.flannel.backend",
			line:     4,
			contains: `must be one of vxlan, host-gw, wireguard, wireguard-native, got "ipsec"`,
		},
		{
			name:     "unknown egress selector mode",
			raw:      doc("spec:", "  network:", "    egressSelectorMode: tunnel"),
			path:     "spec.network.egressSelectorMode",
			line:     3,
			contains: `must be one of agent, pod, cluster, disabled, got "tunnel"`,
		},
		{
			name:     "port zero is out of range",
			raw:      doc("spec:", "  api:", "    port: 0"),
			path:     "spec.api.port",
			line:     3,
			contains: "must be between 1 and 65535, got 0",
		},
		{
			name:     "port above 65535 is out of range",
			raw:      doc("spec:", "  api:", "    port: 70000"),
			path:     "spec.api.port",
			line:     3,
			contains: "must be between 1 and 65535, got 70000",
		},
		{
			name:     "port that is not an integer",
			raw:      doc("spec:", "  api:", `    port: "abc"`),
			path:     "spec.api.port",
			line:     3,
			contains: `must be an integer, got "abc"`,
		},
		{
			name:     "sans that is not a list",
			raw:      doc("spec:", "  api:", "    sans: k8s.example.com"),
			path:     "spec.api.sans",
			line:     3,
			contains: "must be a list",
		},
		{
			name:     "CIDR with prefix longer than 32 bits",
			raw:      doc("spec:", "  network:", "    podCIDR: 10.42.0.0/33"),
			path:     "spec.network.podCIDR",
			line:     3,
			contains: `must be a CIDR like 10.42.0.0/16, got "10.42.0.0/33"`,
		},
		{
			name:     "CIDR that is not a CIDR at all",
			raw:      doc("spec:", "  network:", "    serviceCIDR: banana"),
			path:     "spec.network.serviceCIDR",
			line:     3,
			contains: `got "banana"`,
		},
		{
			name:     "CIDR with host bits set suggests the network address",
			raw:      doc("spec:", "  network:", "    podCIDR: 10.42.0.1/16"),
			path:     "spec.network.podCIDR",
			line:     3,
			contains: "did you mean 10.42.0.0/16?",
		},
		{
			name: "service CIDR overlapping the pod CIDR",
			raw: doc(
				"spec:",
				"  network:",
				"    podCIDR: 10.42.0.0/16",
				"    serviceCIDR: 10.42.128.0/17",
				"    clusterDNS: 10.42.128.10",
			),
			path:     "spec.network.serviceCIDR",
			line:     4,
			contains: "10.42.128.0/17 overlaps spec.network.podCIDR 10.42.0.0/16",
		},
		{
			name:     "pod CIDR written over the default service CIDR",
			raw:      doc("spec:", "  network:", "    podCIDR: 10.43.0.0/16"),
			path:     "spec.network.podCIDR",
			line:     3,
			contains: "10.43.0.0/16 overlaps spec.network.serviceCIDR 10.43.0.0/16 (the default)",
		},
		{
			name:     "service CIDR larger than a /12",
			raw:      doc("spec:", "  network:", "    serviceCIDR: 172.0.0.0/8", "    clusterDNS: 172.0.0.10"),
			path:     "spec.network.serviceCIDR",
			line:     3,
			contains: "too large",
		},
		{
			name:     "cluster DNS outside the service CIDR",
			raw:      doc("spec:", "  network:", "    clusterDNS: 10.44.0.10"),
			path:     "spec.network.clusterDNS",
			line:     3,
			contains: "10.44.0.10 is outside spec.network.serviceCIDR 10.43.0.0/16",
		},
		{
			name:     "cluster DNS that is not an IP",
			raw:      doc("spec:", "  network:", "    clusterDNS: kube-dns"),
			path:     "spec.network.clusterDNS",
			line:     3,
			contains: "must be an IP address",
		},
		{
			name:     "cluster domain that is not a DNS domain",
			raw:      doc("spec:", "  network:", "    clusterDomain: Not_A_Domain"),
			path:     "spec.network.clusterDomain",
			line:     3,
			contains: "must be a DNS domain like cluster.local",
		},
		{
			name:     "wrong apiVersion",
			raw:      doc("apiVersion: monokube.io/v1", "kind: ClusterConfig"),
			path:     "apiVersion",
			line:     1,
			contains: `must be "monokube.io/v1beta1", got "monokube.io/v1"`,
		},
		{
			name:     "wrong kind",
			raw:      doc("apiVersion: monokube.io/v1beta1", "kind: Cluster"),
			path:     "kind",
			line:     2,
			contains: `must be "ClusterConfig", got "Cluster"`,
		},
		{
			name:     "unknown storage type",
			raw:      doc("spec:", "  storage:", "    type: floppy"),
			path:     "spec.storage.type",
			line:     3,
			contains: `must be one of sqlite, etcd, postgres, mysql, got "floppy"`,
		},
		{
			name:     "postgres without a data source",
			raw:      doc("spec:", "  storage:", "    type: postgres"),
			path:     "spec.storage.dataSource",
			line:     3,
			contains: "is required for this datastore",
		},
		{
			name:     "mysql data source that is not a URL",
			raw:      doc("spec:", "  storage:", "    type: mysql", "    dataSource: root:pw@tcp(db)/k8s"),
			path:     "spec.storage.dataSource",
			line:     4,
			contains: "must be a URL such as mysql://",
		},
		{
			name:     "etcd endpoint that is not a URL",
			raw:      doc("spec:", "  storage:", "    type: etcd", "    etcd:", "      endpoints: [10.0.0.5]"),
			path:     "spec.storage.etcd.endpoints[0]",
			line:     5,
			contains: "must be an http(s) URL",
		},
		{
			name:     "snapshot schedule that is not cron",
			raw:      doc("spec:", "  storage:", "    snapshots:", "      schedule: twice a day"),
			path:     "spec.storage.snapshots.schedule",
			line:     4,
			contains: "is not a cron expression",
		},
		{
			name:     "API address that is not an IP",
			raw:      doc("spec:", "  api:", "    address: not-an-ip"),
			path:     "spec.api.address",
			line:     3,
			contains: `must be an IP address, got "not-an-ip"`,
		},
		{
			name:     "extraArgs key with leading dashes",
			raw:      doc("spec:", "  api:", "    extraArgs:", "      --foo: bar"),
			path:     "spec.api.extraArgs.--foo",
			line:     4,
			contains: `without leading dashes, like "foo"`,
		},
		{
			name:     "controller-manager extraArgs key with leading dashes",
			raw:      doc("spec:", "  controllerManager:", "    extraArgs:", "      -v: '2'"),
			path:     "spec.controllerManager.extraArgs.-v",
			line:     4,
			contains: `like "v"`,
		},
		{
			name:     "endpoint reconciler the API server would die on",
			raw:      doc("spec:", "  api:", "    extraArgs:", "      endpoint-reconciler-type: leases"),
			path:     "spec.api.extraArgs.endpoint-reconciler-type",
			line:     4,
			contains: `must be one of lease, master-count, none, got "leases"`,
		},
		{
			name:     "scheduler leader election set by hand",
			raw:      doc("spec:", "  scheduler:", "    extraArgs:", "      leader-elect: 'true'"),
			path:     "spec.scheduler.extraArgs.leader-elect",
			line:     4,
			contains: "is set by monokube",
		},
		{
			name:     "controller-manager leader election set by hand",
			raw:      doc("spec:", "  controllerManager:", "    extraArgs:", "      leader-elect: 'false'"),
			path:     "spec.controllerManager.extraArgs.leader-elect",
			line:     4,
			contains: "is set by monokube",
		},
		{
			name:     "scheduler asked to write its config and exit",
			raw:      doc("spec:", "  scheduler:", "    extraArgs:", "      write-config-to: /tmp/s.yaml"),
			path:     "spec.scheduler.extraArgs.write-config-to",
			line:     4,
			contains: "writes the file and exits",
		},
		{
			name:     "SAN that is neither an IP nor a DNS name",
			raw:      doc("spec:", "  api:", "    sans:", "    - k8s.example.com", "    - bad_name!"),
			path:     "spec.api.sans[1]",
			line:     5,
			contains: `must be an IP address or DNS name, got "bad_name!"`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeConfig(t, tt.raw))
			var invalid *InvalidError
			if !errors.As(err, &invalid) {
				t.Fatalf("Load error = %v (%T), want *InvalidError", err, err)
			}
			for _, f := range invalid.Fields {
				if f.Path == tt.path && f.Line == tt.line && strings.Contains(f.Message, tt.contains) {
					return
				}
			}
			t.Errorf("no error for %s at line %d mentioning %q; got %#v", tt.path, tt.line, tt.contains, invalid.Fields)
		})
	}
}

func TestInvalidFileReportsEveryError(t *testing.T) {
	tests := []struct {
		name  string
		raw   []byte
		paths []string
	}{
		{
			name: "validation errors",
			raw: doc(
				"apiVersion: monokube.io/v1beta1",
				"kind: ClusterConfig",
				"spec:",
				"  api:",
				"    port: 0",
				"  storage:",
				"    type: floppy",
				"  network:",
				"    podCIDR: banana",
			),
			paths: []string{"spec.api.port", "spec.storage.type", "spec.network.podCIDR"},
		},
		{
			name: "unknown fields and wrong types",
			raw: doc(
				"spec:",
				"  api:",
				"    port: abc",
				"    adress: 10.0.0.1",
				"  netwrok: {}",
			),
			paths: []string{"spec.api.port", "spec.api.adress", "spec.netwrok"},
		},
		{
			name: "unknown field together with invalid values",
			raw: doc(
				"spec:",
				"  api:",
				"    adress: 10.0.0.1",
				"    port: 0",
				"  network:",
				"    clusterDNS: 10.44.0.10",
			),
			paths: []string{"spec.api.adress", "spec.api.port", "spec.network.clusterDNS"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeConfig(t, tt.raw))
			var invalid *InvalidError
			if !errors.As(err, &invalid) {
				t.Fatalf("Load error = %v (%T), want *InvalidError", err, err)
			}
			if len(invalid.Fields) != len(tt.paths) {
				t.Errorf("got %d errors, want %d: %v", len(invalid.Fields), len(tt.paths), invalid.Fields)
			}
			for _, path := range tt.paths {
				found := false
				for _, f := range invalid.Fields {
					found = found || f.Path == path
				}
				if !found {
					t.Errorf("no error for %s in %v", path, invalid.Fields)
				}
			}
		})
	}
}

func TestLoadErrorNamesFileAndLine(t *testing.T) {
	path := writeConfig(t, doc(
		"apiVersion: monokube.io/v1beta1",
		"kind: ClusterConfig",
		"spec:",
		"  api:",
		"    port: 70000",
	))
	_, err := Load(path)
	if err == nil {
		t.Fatal("Load accepted port 70000")
	}
	var invalid *InvalidError
	if !errors.As(err, &invalid) || invalid.File != path {
		t.Fatalf("Load error = %#v, want *InvalidError with File %q", err, path)
	}
	if want := path + ":5: spec.api.port"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err.Error(), want)
	}
}

func TestValidateWithoutLinesNamesDefaultsAndFlags(t *testing.T) {
	cfg := Default()
	cfg.Spec.API.Port = -1
	err := Validate(cfg, nil)
	if err == nil {
		t.Fatal("Validate accepted port -1")
	}
	if len(err.Fields) != 1 || err.Fields[0].Line != 0 {
		t.Errorf("Fields = %v, want one error without a line", err.Fields)
	}
	if msg := err.Error(); !strings.Contains(msg, "(defaults and flags)") || !strings.Contains(msg, "spec.api.port") {
		t.Errorf("Error() = %q, want it to name the source and the field", msg)
	}
}

func TestLoadMissingFileIsNotAnInvalidError(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "absent.yaml"))
	if err == nil {
		t.Fatal("Load of a missing file succeeded")
	}
	var invalid *InvalidError
	if errors.As(err, &invalid) {
		t.Errorf("Load error = %v, want a read error, not *InvalidError", err)
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load error = %v, want it to wrap os.ErrNotExist", err)
	}
}

func TestLoadRejectsMalformedYAML(t *testing.T) {
	path := writeConfig(t, []byte("spec:\n  api: [\n"))
	_, err := Load(path)
	if err == nil {
		t.Fatal("Load accepted malformed YAML")
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the file", err)
	}
}

func TestFirstServiceIP(t *testing.T) {
	tests := []struct {
		cidr    string
		want    string
		wantErr bool
	}{
		{cidr: "10.43.0.0/16", want: "10.43.0.1"},
		{cidr: "10.96.0.0/12", want: "10.96.0.1"},
		{cidr: "10.43.7.9/16", want: "10.43.0.1"}, // host bits are masked off
		{cidr: "fd00:43::/108", want: "fd00:43::1"},
		{cidr: "banana", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.cidr, func(t *testing.T) {
			got, err := FirstServiceIP(tt.cidr)
			if tt.wantErr {
				if err == nil {
					t.Errorf("FirstServiceIP(%q) = %v, want an error", tt.cidr, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("FirstServiceIP(%q): %v", tt.cidr, err)
			}
			if !got.Equal(net.ParseIP(tt.want)) {
				t.Errorf("FirstServiceIP(%q) = %v, want %s", tt.cidr, got, tt.want)
			}
		})
	}
}

func TestRegistriesFileErrorsNameFileAndLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registries.yaml")
	body := `mirrors:
  docker.io:
    endpoint:
      - "registry.example:5000"
    rewrite:
      "^library/(": "x/$1"
configs:
  registry.example:5000:
    auth:
      username: someone
    tls:
      ca_file: /nonexistent/ca.pem
      insecure_skip_verfy: true
`
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadRegistries(path)
	if err == nil {
		t.Fatal("a bad registries file was accepted")
	}
	for _, want := range []string{
		path + ":4: mirrors.docker.io.endpoint[0]: \"registry.example:5000\" must be an http:// or https:// URL",
		path + ":6: mirrors.docker.io.rewrite.^library/(: not a regular expression",
		path + ":10: configs.registry.example:5000.auth: give username and password",
		path + ":12: configs.registry.example:5000.tls.ca_file: cannot read it",
		path + ":13: configs.registry.example:5000.tls.insecure_skip_verfy: unknown field",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if _, err := LoadRegistries(filepath.Join(t.TempDir(), "absent.yaml")); err != nil {
		t.Errorf("a missing registries file must add nothing, got %v", err)
	}
}
