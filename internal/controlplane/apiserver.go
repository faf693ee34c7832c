package controlplane

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	genericapiserver "k8s.io/apiserver/pkg/server"
	encryptionreload "k8s.io/apiserver/pkg/server/options/encryptionconfig/controller"
	"k8s.io/client-go/tools/cache"

	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	apiserverapp "k8s.io/kubernetes/cmd/kube-apiserver/app"
	apiserveroptions "k8s.io/kubernetes/cmd/kube-apiserver/app/options"

	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/datastore"
	"github.com/monokube/monokube/internal/encryption"
	"github.com/monokube/monokube/internal/kubeclient"
	"github.com/monokube/monokube/internal/pki"
	"github.com/monokube/monokube/internal/tunnel"
)

// APIServer runs kube-apiserver in-process.
type APIServer struct {
	PKI              pki.Files
	BindAddress      string
	AdvertiseAddress string
	Port             int
	ServiceCIDR      string
	ClusterDomain    string
	// Etcd returns how to reach the datastore; known only once it started.
	Etcd             func() datastore.Client
	EncryptionAtRest bool
	// Encryption is how the first encryption key is made.
	Encryption  encryption.Settings
	PodSecurity PodSecurityLevels
	Audit       Audit
	// CIS hardens the API server to the CIS benchmark (spec.profile: cis).
	CIS       bool
	ExtraArgs Args
	// Flags, when set, records the flags it starts with.
	Flags *FlagRecord
	// DatastoreDir is the local datastore's directory, whose free space
	// gates writes (diskGuard); empty for a datastore elsewhere.
	DatastoreDir string
	// Tunnels, when set, serve the nodes' tunnels on the API port and
	// EgressSocket is where the API server's connections into the cluster
	// go (package tunnel); PodEgress says pods are reached through them,
	// so Services are dialed at their endpoints (aggregator routing).
	Tunnels      *tunnel.Server
	EgressSocket string
	PodEgress    bool

	component.Task
	client           kubernetes.Interface
	encryptionConfig string
	auditPolicy      string
}

var _ component.Component = (*APIServer)(nil)
var _ component.Exiter = (*APIServer)(nil)

func (a *APIServer) Name() string { return "apiserver" }

// Init writes the admission, encryption and audit configs the flags point
// at.
func (a *APIServer) Init(context.Context) error {
	if err := writeAdmissionConfig(a.PKI.Path("admission-config.yaml"), a.PodSecurity, a.CIS); err != nil {
		return err
	}
	var err error
	a.encryptionConfig, err = encryption.Files{Dir: a.PKI.Dir}.Prepare(a.EncryptionAtRest, a.Encryption)
	if err != nil {
		return err
	}
	if a.Audit.Path != "" {
		if a.auditPolicy, err = writeAuditPolicy(a.PKI.Path("audit-policy.yaml"), a.Audit); err != nil {
			return err
		}
	}
	if a.Tunnels == nil {
		return nil
	}
	return tunnel.WriteEgressSelectorConfig(a.PKI.Path("egress-selector.yaml"), a.EgressSocket)
}

// args is how we configure kube-apiserver: secure by default (no anonymous
// access, Node+RBAC authorization, NodeRestriction, service-account tokens
// signed by our key), then the user's extraArgs on top.
func (a *APIServer) args() Args {
	issuer := "https://kubernetes.default.svc." + a.ClusterDomain
	etcd := a.Etcd()
	defaults := Args{
		"advertise-address":                  a.AdvertiseAddress,
		"bind-address":                       a.BindAddress,
		"secure-port":                        strconv.Itoa(a.Port),
		"etcd-servers":                       strings.Join(etcd.Endpoints, ","),
		"storage-backend":                    "etcd3",
		"anonymous-auth":                     "false",
		"authorization-mode":                 "Node,RBAC",
		"enable-admission-plugins":           a.admissionPlugins(),
		"admission-control-config-file":      a.PKI.Path("admission-config.yaml"),
		"allow-privileged":                   "true",
		"enable-bootstrap-token-auth":        "true",
		"profiling":                          "false",
		"client-ca-file":                     a.PKI.CACert(),
		"tls-cert-file":                      a.PKI.Pair(pki.APIServer),
		"tls-private-key-file":               a.PKI.Pair(pki.APIServer),
		"kubelet-client-certificate":         a.PKI.Pair(pki.APIServerKubeletClient),
		"kubelet-client-key":                 a.PKI.Pair(pki.APIServerKubeletClient),
		"kubelet-certificate-authority":      a.PKI.CACert(),
		"kubelet-preferred-address-types":    "InternalIP,ExternalIP,Hostname",
		"service-account-issuer":             issuer,
		"api-audiences":                      issuer,
		"service-account-key-file":           a.PKI.ServiceAccountPub(),
		"service-account-signing-key-file":   a.PKI.ServiceAccountKey(),
		"service-cluster-ip-range":           a.ServiceCIDR,
		"proxy-client-cert-file":             a.PKI.Pair(pki.FrontProxyClient),
		"proxy-client-key-file":              a.PKI.Pair(pki.FrontProxyClient),
		"requestheader-client-ca-file":       a.PKI.FrontProxyCACert(),
		"requestheader-allowed-names":        "front-proxy-client",
		"requestheader-extra-headers-prefix": "X-Remote-Extra-",
		"requestheader-group-headers":        "X-Remote-Group",
		"requestheader-username-headers":     "X-Remote-User",
		// Where the API server writes generated certificates if ours were
		// missing; keeps it out of /var/run/kubernetes.
		"cert-dir": a.PKI.Dir,
	}
	if a.encryptionConfig != "" {
		defaults["encryption-provider-config"] = a.encryptionConfig
		// A key rotation rewrites the file on every server; each API
		// server loads it while serving (encryption.Syncer).
		defaults["encryption-provider-config-automatic-reload"] = "true"
	}
	if a.auditPolicy != "" {
		maps.Copy(defaults, a.Audit.args(a.auditPolicy))
	}
	if a.CIS {
		maps.Copy(defaults, cisAPIServerArgs())
	}
	if a.Tunnels != nil {
		defaults["egress-selector-config-file"] = a.PKI.Path("egress-selector.yaml")
		if a.PodEgress {
			// Webhooks and aggregated APIs are dialed at a pod's address,
			// which the tunnel of the pod's node reaches, rather than at
			// a ClusterIP only a node can reach.
			defaults["enable-aggregator-routing"] = "true"
		}
	}
	for flag, file := range map[string]string{"etcd-cafile": etcd.TLS.CAFile, "etcd-certfile": etcd.TLS.CertFile, "etcd-keyfile": etcd.TLS.KeyFile} {
		if file != "" {
			defaults[flag] = file
		}
	}
	if ip := net.ParseIP(a.AdvertiseAddress); ip != nil && ip.IsLoopback() {
		// The "kubernetes" Service cannot point at a loopback address
		// (Endpoints validation refuses it), so do not try every 10 s.
		defaults["endpoint-reconciler-type"] = "none"
	}
	return merged(defaults, a.ExtraArgs)
}

// admissionPlugins are those enabled besides upstream's defaults.
func (a *APIServer) admissionPlugins() string {
	plugins := []string{"NodeRestriction"}
	if a.CIS {
		plugins = append(plugins, cisAdmissionPlugins...)
	}
	if a.DatastoreDir != "" {
		plugins = append(plugins, diskGuardPlugin)
	}
	return strings.Join(plugins, ",")
}

// encryptionReloadEvery is how often the API server looks at its
// encryption configuration file; upstream's minute would make each step of
// a key rotation wait that long on every server.
const encryptionReloadEvery = 2 * time.Second

func (a *APIServer) Start(ctx context.Context) error {
	encryptionreload.EncryptionConfigFileChangePollDuration = encryptionReloadEvery
	opts := apiserveroptions.NewServerRunOptions()
	if a.DatastoreDir != "" {
		admissionOpts := opts.Admission.GenericAdmission
		registerDiskGuard(admissionOpts.Plugins, a.DatastoreDir, DefaultDatastoreReserve)
		admissionOpts.RecommendedPluginOrder = append(admissionOpts.RecommendedPluginOrder, diskGuardPlugin)
	}
	args := a.args()
	if err := applyFlags(opts.Flags(), args, "spec.api.extraArgs"); err != nil {
		return err
	}
	if err := a.Flags.Record(a.Name(), args); err != nil {
		return err
	}
	if err := opts.GenericServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		return fmt.Errorf("feature gates: %w", err)
	}
	// The API server's own loopback clients should not log warnings it issued itself.
	rest.SetDefaultWarningHandler(rest.NoWarnings{})
	completed, err := opts.Complete(ctx)
	if err != nil {
		return fmt.Errorf("complete options: %w", err)
	}
	if errs := completed.Validate(); len(errs) > 0 {
		return fmt.Errorf("invalid options: %w", utilerrors.NewAggregate(errs))
	}
	if a.client, err = kubeclient.New(a.PKI.SelfKubeconfig(), kubeclient.WithTimeout(2*time.Second)); err != nil {
		return err
	}
	a.Go(ctx, func(ctx context.Context) error { return run(ctx, completed, a.Tunnels) })
	return nil
}

// run is upstream's app.Run with one filter added to the handler chain
// (ownNodeGate), inside authentication and authorization, and the nodes'
// tunnel endpoint (when tunnels is set) in front of the whole chain.
func run(ctx context.Context, opts apiserveroptions.CompletedOptions, tunnels *tunnel.Server) error {
	if opts.InformerName == nil {
		name, err := cache.NewInformerName("kube-apiserver")
		if err != nil {
			return err
		}
		opts.InformerName = name
	}
	config, err := apiserverapp.NewConfig(opts)
	if err != nil {
		return err
	}
	gate := ownNodeGate{nodes: config.KubeAPIs.ControlPlane.VersionedInformers.Core().V1().Nodes().Lister()}
	buildChain := config.Aggregator.GenericConfig.BuildHandlerChainFunc
	config.Aggregator.GenericConfig.BuildHandlerChainFunc = func(handler http.Handler, c *genericapiserver.Config) http.Handler {
		chain := buildChain(gate.wrap(handler), c)
		if tunnels == nil {
			return chain
		}
		return tunnels.Handler(chain, c.Authentication.Authenticator)
	}
	completed, err := config.Complete()
	if err != nil {
		return err
	}
	server, err := apiserverapp.CreateServerChain(completed)
	if err != nil {
		return err
	}
	prepared, err := server.PrepareRun()
	if err != nil {
		return err
	}
	return prepared.Run(ctx)
}

// Ready waits for /readyz, which covers the datastore, RBAC bootstrap and
// the built-in priority levels.
func (a *APIServer) Ready(ctx context.Context) error {
	var last string
	err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		body, err := a.client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		return string(body) == "ok", nil
	})
	if err != nil {
		return fmt.Errorf("waiting for /readyz (last answer: %s): %w", last, err)
	}
	return nil
}

// Stop cancels the API server and waits for it. Its HTTP server drains open
// watches for up to a minute; with a worker in this process the kubelet's
// and kube-proxy's informers (which upstream cannot stop in-process) keep
// theirs open, so after a few seconds the process exit ends them instead.
func (a *APIServer) Stop() error {
	if err := a.Task.Stop(5 * time.Second); err != nil {
		klog.InfoS("API server still draining connections; the process exit ends them", "reason", err.Error())
	}
	return nil
}
