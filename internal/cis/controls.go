package cis

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Inputs are what the checks read from a server's or a worker's data dir.
type Inputs struct {
	// Worker is a worker's data dir: only its node is checked.
	Worker                                  bool
	APIServer, ControllerManager, Scheduler Flags
	// Node is the kubelet's and kube-proxy's settings; nil without a node.
	Node *Node
	// PodSecurityEnforce is the cluster-wide Pod Security enforce level.
	PodSecurityEnforce string
	// EncryptionProviders are the Secrets' providers, the writing one first.
	EncryptionProviders []string
	// Files are the files CIS 1.1 asks about, as they are on disk.
	Files []File
}

// Node is what section 4 reads of the kubelet's and kube-proxy's config.
type Node struct {
	AnonymousAuth, AuthorizationMode, ClientCAFile string
	ReadOnlyPort                                   int32
	StreamingConnectionIdleTimeout                 string
	MakeIPTablesUtilChains, RotateCertificates     bool
	ServerTLSBootstrap                             bool
	TLSCertFile                                    string
	TLSCipherSuites                                []string
	PodPidsLimit                                   int64
	ProtectKernelDefaults                          bool
	KubeProxyMetricsBindAddress                    string
	KubeProxyKubeconfig                            string
}

// File is one file's role (what CIS calls it), path, mode and owner.
type File struct {
	ID, Role, Path string
	// Most is the loosest mode the CIS allows.
	Most    uint32
	Mode    uint32
	UID     uint32
	Missing bool
}

// Check runs every control that applies to a server (and its node), or
// to a worker.
func Check(in Inputs) []Result {
	var results []Result
	results = append(results, files(in.Files)...)
	if in.Worker {
		return append(results, node(*in.Node)...)
	}
	results = append(results, apiServer(in)...)
	results = append(results, controllerManager(in.ControllerManager)...)
	results = append(results, scheduler(in.Scheduler)...)
	if in.Node != nil {
		results = append(results, node(*in.Node)...)
	}
	results = append(results, policies(in)...)
	return results
}

func files(files []File) []Result {
	var results []Result
	for _, f := range files {
		title := fmt.Sprintf("%s permissions %o or stricter, owned by root", f.Role, f.Most)
		switch {
		case f.Missing:
			results = append(results, manual(f.ID, title, f.Path+" is not there on this machine"))
		case f.Mode&^f.Most != 0 || f.UID != 0:
			results = append(results, check(f.ID, title, false, "%s is %o, owner uid %d", f.Path, f.Mode, f.UID))
		default:
			results = append(results, check(f.ID, title, true, "%s is %o, owned by root", f.Path, f.Mode))
		}
	}
	return results
}

func apiServer(in Inputs) []Result {
	a := in.APIServer
	plugins := a.list("enable-admission-plugins")
	disabled := a.list("disable-admission-plugins")
	plugin := func(id, name string) Result {
		return check(id, "the "+name+" admission plugin is set", slices.Contains(plugins, name), "--enable-admission-plugins=%s", a["enable-admission-plugins"])
	}
	// Upstream enables these unless disabled.
	defaultPlugin := func(id, name string) Result {
		return check(id, "the "+name+" admission plugin is set", !slices.Contains(disabled, name), "on by default; --disable-admission-plugins=%s", a["disable-admission-plugins"])
	}
	modes := a.list("authorization-mode")
	results := []Result{
		flagIs(a, "1.2.1", "--anonymous-auth is false", "anonymous-auth", "false", "true"),
		check("1.2.2", "--token-auth-file is not set", !a.has("token-auth-file"), "--token-auth-file=%q", a["token-auth-file"]),
		plugin("1.2.3", "DenyServiceExternalIPs"),
		flagSet(a, "1.2.4", "--kubelet-client-certificate and --kubelet-client-key are set", "kubelet-client-certificate", "kubelet-client-key"),
		flagSet(a, "1.2.5", "--kubelet-certificate-authority is set", "kubelet-certificate-authority"),
		check("1.2.6", "--authorization-mode is not AlwaysAllow", len(modes) > 0 && !slices.Contains(modes, "AlwaysAllow"), "--authorization-mode=%s", a["authorization-mode"]),
		check("1.2.7", "--authorization-mode includes Node", slices.Contains(modes, "Node"), "--authorization-mode=%s", a["authorization-mode"]),
		check("1.2.8", "--authorization-mode includes RBAC", slices.Contains(modes, "RBAC"), "--authorization-mode=%s", a["authorization-mode"]),
		plugin("1.2.9", "EventRateLimit"),
		check("1.2.10", "the AlwaysAdmit admission plugin is not set", !slices.Contains(plugins, "AlwaysAdmit"), "--enable-admission-plugins=%s", a["enable-admission-plugins"]),
		manual("1.2.11", "the AlwaysPullImages admission plugin is set",
			"left off: monokube runs the images it carries, which no registry may serve (air-gapped); a forced pull would stop them. Set it with spec.api.extraArgs where every image comes from a registry"),
		defaultPlugin("1.2.12", "ServiceAccount"),
		defaultPlugin("1.2.13", "NamespaceLifecycle"),
		plugin("1.2.14", "NodeRestriction"),
		flagIs(a, "1.2.15", "--profiling is false", "profiling", "false", "true"),
		flagSet(a, "1.2.16", "--audit-log-path is set", "audit-log-path"),
		atLeast(a, "1.2.17", "--audit-log-maxage is 30 or more", "audit-log-maxage", 30),
		atLeast(a, "1.2.18", "--audit-log-maxbackup is 10 or more", "audit-log-maxbackup", 10),
		atLeast(a, "1.2.19", "--audit-log-maxsize is 100 or more", "audit-log-maxsize", 100),
		manual("1.2.20", "--request-timeout is appropriate", fmt.Sprintf("--request-timeout=%s (upstream's 1m0s when unset)", orDefault(a["request-timeout"], "unset"))),
		flagIs(a, "1.2.21", "--service-account-lookup is true", "service-account-lookup", "true", "true"),
		flagSet(a, "1.2.22", "--service-account-key-file is set", "service-account-key-file"),
		etcdTLS(a, "1.2.23", "--etcd-certfile and --etcd-keyfile are set", "etcd-certfile", "etcd-keyfile"),
		flagSet(a, "1.2.24", "--tls-cert-file and --tls-private-key-file are set", "tls-cert-file", "tls-private-key-file"),
		flagSet(a, "1.2.25", "--client-ca-file is set", "client-ca-file"),
		etcdTLS(a, "1.2.26", "--etcd-cafile is set", "etcd-cafile"),
		flagSet(a, "1.2.27", "--encryption-provider-config is set", "encryption-provider-config"),
		encryptionProviders(in.EncryptionProviders),
		ciphers("1.2.29", "the API server uses strong ciphers only", a.list("tls-cipher-suites")),
	}
	return results
}

// etcdTLS: kine over a unix socket has no TLS to set.
func etcdTLS(a Flags, id, title string, flags ...string) Result {
	if strings.HasPrefix(a["etcd-servers"], "unix://") {
		return manual(id, title, "the datastore (kine) is reached through a unix socket in a 0700 directory, not over the network: no TLS to set")
	}
	return flagSet(a, id, title, flags...)
}

func encryptionProviders(providers []string) Result {
	const title = "encryption providers are appropriately configured"
	if len(providers) == 0 {
		return check("1.2.28", title, false, "Secrets are not encrypted (spec.api.encryptionAtRest)")
	}
	writes := providers[0]
	ok := slices.Contains([]string{"aescbc", "aesgcm", "secretbox", "kms"}, writes)
	return check("1.2.28", title, ok, "Secrets are written with %s (providers: %s)", writes, strings.Join(providers, ", "))
}

func controllerManager(c Flags) []Result {
	return []Result{
		flagSet(c, "1.3.1", "--terminated-pod-gc-threshold is set", "terminated-pod-gc-threshold"),
		flagIs(c, "1.3.2", "--profiling is false", "profiling", "false", "true"),
		flagIs(c, "1.3.3", "--use-service-account-credentials is true", "use-service-account-credentials", "true", "false"),
		flagSet(c, "1.3.4", "--service-account-private-key-file is set", "service-account-private-key-file"),
		flagSet(c, "1.3.5", "--root-ca-file is set", "root-ca-file"),
		check("1.3.6", "RotateKubeletServerCertificate is true", !strings.Contains(c["feature-gates"], "RotateKubeletServerCertificate=false"), "--feature-gates=%q", c["feature-gates"]),
		flagIs(c, "1.3.7", "--bind-address is 127.0.0.1", "bind-address", "127.0.0.1", "0.0.0.0"),
	}
}

func scheduler(s Flags) []Result {
	return []Result{
		flagIs(s, "1.4.1", "--profiling is false", "profiling", "false", "true"),
		flagIs(s, "1.4.2", "--bind-address is 127.0.0.1", "bind-address", "127.0.0.1", "0.0.0.0"),
	}
}

func node(n Node) []Result {
	return []Result{
		check("4.2.1", "the kubelet's anonymous auth is off", n.AnonymousAuth == "false", "authentication.anonymous.enabled=%s", n.AnonymousAuth),
		check("4.2.2", "the kubelet's authorization mode is not AlwaysAllow", n.AuthorizationMode != "" && n.AuthorizationMode != "AlwaysAllow", "authorization.mode=%s", n.AuthorizationMode),
		check("4.2.3", "the kubelet's client CA file is set", n.ClientCAFile != "", "authentication.x509.clientCAFile=%q", n.ClientCAFile),
		check("4.2.4", "the kubelet's read-only port is 0", n.ReadOnlyPort == 0, "readOnlyPort=%d", n.ReadOnlyPort),
		check("4.2.5", "the kubelet's streaming connection idle timeout is not 0", n.StreamingConnectionIdleTimeout != "0s", "streamingConnectionIdleTimeout=%s", orDefault(n.StreamingConnectionIdleTimeout, "4h0m0s (default)")),
		check("4.2.6", "the kubelet makes its iptables util chains", n.MakeIPTablesUtilChains, "makeIPTablesUtilChains=%v", n.MakeIPTablesUtilChains),
		manual("4.2.7", "--hostname-override is not set", "the node's name is the hostname unless --node-name says otherwise: check that the name is the one you mean"),
		manual("4.2.8", "eventRecordQPS is appropriate", "upstream's default (50/s) is used"),
		kubeletServing(n),
		check("4.2.10", "the kubelet rotates its client certificate", n.RotateCertificates || n.TLSCertFile != "", "rotateCertificates=%v (a server's own node gets its certificates from the server and renews them at start)", n.RotateCertificates),
		manual("4.2.11", "RotateKubeletServerCertificate is true", "on by default; a worker's kubelet asks the cluster for its serving certificate (serverTLSBootstrap), a server's node gets one from the server"),
		ciphers("4.2.12", "the kubelet uses strong ciphers only", n.TLSCipherSuites),
		manual("4.2.13", "a limit is set on pod PIDs", fmt.Sprintf("podPidsLimit=%d: choose one for your workloads (spec.worker has no setting yet)", n.PodPidsLimit)),
		check("4.2.x", "the kubelet protects the kernel's defaults (4.2.6 of CIS v1.8)", n.ProtectKernelDefaults, "protectKernelDefaults=%v", n.ProtectKernelDefaults),
		check("4.3.1", "kube-proxy's metrics are bound to localhost", strings.HasPrefix(n.KubeProxyMetricsBindAddress, "127.0.0.1:"), "metricsBindAddress=%s", n.KubeProxyMetricsBindAddress),
	}
}

func kubeletServing(n Node) Result {
	const title = "the kubelet's serving certificate is set"
	if n.TLSCertFile != "" {
		return check("4.2.9", title, true, "tlsCertFile=%s", n.TLSCertFile)
	}
	return manual("4.2.9", title, fmt.Sprintf("serverTLSBootstrap=%v: the cluster signs it (a worker)", n.ServerTLSBootstrap))
}

func policies(in Inputs) []Result {
	restricted := in.PodSecurityEnforce == "restricted"
	return []Result{
		check("5.2.1", "the cluster has a policy control mechanism in place", in.PodSecurityEnforce != "", "Pod Security Admission enforces %q outside kube-system", in.PodSecurityEnforce),
		check("5.2.2-5.2.9", "privileged, host namespace, privilege escalation, root and capability admissions are minimised", restricted,
			"Pod Security Admission enforces %q by default (restricted forbids them all)", in.PodSecurityEnforce),
		manual("5.1", "RBAC and service accounts", "review who is bound to cluster-admin and which service accounts mount tokens (kubectl get clusterrolebindings -o wide)"),
		manual("5.3-5.7", "network policies, secrets, admission and namespaces", "NetworkPolicies are enforced on every node (spec.addons.networkPolicy); give each namespace its policies"),
	}
}

func atLeast(f Flags, id, title, flag string, least int) Result {
	value, err := strconv.Atoi(f[flag])
	return check(id, title, err == nil && value >= least, "--%s=%s", flag, orDefault(f[flag], "unset"))
}

func orDefault(value, dflt string) string {
	if value == "" {
		return dflt
	}
	return value
}
