// Package server assembles the server role: it turns a ClusterConfig and a
// data dir into the ordered components of a control plane and runs them.
package server

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/addons"
	"github.com/monokube/monokube/internal/backup"
	"github.com/monokube/monokube/internal/bundle"
	"github.com/monokube/monokube/internal/carotation"
	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/config"
	"github.com/monokube/monokube/internal/controlplane"
	"github.com/monokube/monokube/internal/datadir"
	"github.com/monokube/monokube/internal/datastore"
	"github.com/monokube/monokube/internal/encryption"
	"github.com/monokube/monokube/internal/manifests"
	"github.com/monokube/monokube/internal/node"
	"github.com/monokube/monokube/internal/pki"
	"github.com/monokube/monokube/internal/registries"
	"github.com/monokube/monokube/internal/server/nodejoin"
	"github.com/monokube/monokube/internal/service"
	"github.com/monokube/monokube/internal/sysinfo"
	"github.com/monokube/monokube/internal/tunnel"
	"github.com/monokube/monokube/internal/version"
)

// Ports of the scheduler's and controller-manager's health endpoints on
// loopback, the upstream defaults.
const (
	schedulerPort         = 10259
	controllerManagerPort = 10257
)

// Server is a control plane for one data dir, and with EnableWorker a node too.
type Server struct {
	// OnReady, when set, is called once the server is ready.
	OnReady      func()
	Config       *config.ClusterConfig
	Layout       datadir.Layout
	EnableWorker bool
	// NodeIPs (--node-ip) are the server's node's addresses; none: the
	// address the API server advertises (and its other family's beside it).
	NodeIPs []string
	// ConfigPath is the config file, copied into backups.
	ConfigPath string
	// Token is a controller join token: this server joins a running
	// cluster instead of starting a new one.
	Token string
	// ClusterReset turns the embedded etcd member into a one-member
	// cluster that keeps its data (recovery after losing quorum).
	ClusterReset bool
	// RestorePath, with ClusterReset, replaces the etcd data with a backup's snapshot.
	RestorePath string
	// RegistriesFile (--private-registry) is this machine's k3s-style
	// registries.yaml, added over spec.registries.
	RegistriesFile string

	// registries are spec.registries with their files read; published
	// adds this machine's registries.yaml, for the workers.
	registries, published registries.Settings
}

// Run starts the control plane and blocks until ctx ends (a signal) or a
// component fails; then it stops everything in reverse order. It returns
// nil after a requested stop.
func (s *Server) Run(ctx context.Context) error {
	began := time.Now()
	klog.InfoS("Starting monokube server", "version", version.Version, "kubernetes", version.Kubernetes(), "dataDir", s.Layout.Dir)
	for _, change := range s.Config.Spec.ApplyProfile() {
		klog.InfoS("The profile raised a setting", "profile", s.Config.Spec.Profile, "change", change)
	}
	if s.Token != "" {
		if _, err := s.joinToken(); err != nil {
			return err
		}
	}
	if err := sysinfo.Preflight(sysinfo.For(s.Config.Spec, s.Layout.Dir, true, s.EnableWorker)); err != nil {
		return err
	}
	// A bad registries file is refused before the data dir is touched.
	var err error
	if s.registries, err = registries.Resolve(s.Config.Spec.Registries); err != nil {
		return fmt.Errorf("spec.registries: %w", err)
	}
	if s.published, err = s.publishedRegistries(); err != nil {
		return err
	}
	release, err := s.Layout.Claim()
	if err != nil {
		return err
	}
	defer release()
	if err := backup.RecordServer(s.Layout, s.ConfigPath, s.Config.Spec.Storage); err != nil {
		return err
	}
	// Before the manifests directory is applied: its old static pods
	// subdirectory would be a stack.
	if err := s.Layout.MoveLegacyStaticPods(); err != nil {
		return err
	}
	bundled, err := bundle.Manifests()
	if err != nil {
		return err
	}
	settings, err := addons.NewSettings(s.Config.Spec, bundled)
	if err != nil {
		return err
	}
	if err := addons.Write(s.Layout.ManifestsDir(), s.addons(), settings); err != nil {
		return err
	}

	if s.ClusterReset {
		return s.resetCluster(ctx)
	}
	var etcdJoin []string
	if s.Token != "" {
		if etcdJoin, err = s.joinCluster(ctx); err != nil {
			return err
		}
	}
	manager, err := s.components(etcdJoin)
	if err != nil {
		return err
	}
	manager.OnChange = component.StatesFile(s.Layout.ComponentStates())
	return manager.Run(ctx, func() {
		klog.InfoS("monokube server is ready", "took", time.Since(began).Round(time.Millisecond),
			"kubeconfig", pki.Files{Dir: s.Layout.PKIDir()}.AdminKubeconfig())
		service.NotifyReady()
		if s.OnReady != nil {
			s.OnReady()
		}
	})
}

// components prepares certificates and returns the control plane in start
// order. etcdJoin are the client URLs a new embedded etcd member joins.
func (s *Server) components(etcdJoin []string) (*component.Manager, error) {
	spec := s.Config.Spec
	addrs, err := resolveAddresses(spec)
	if err != nil {
		return nil, err
	}
	if err := s.Layout.WriteAdvertisedURL("https://" + net.JoinHostPort(addrs.advertise, strconv.Itoa(spec.API.Port))); err != nil {
		return nil, err
	}
	renewEvery := pki.CheckInterval(spec.PKI.Validity(), spec.PKI.RenewPercentLeft)
	pki.ReloadEvery(renewEvery)
	certs := &certificates{}
	serverPKI := pki.ServerRequest{
		Dir:               s.Layout.PKIDir(),
		ClusterName:       s.Config.Metadata.Name,
		LocalURL:          addrs.localURL,
		APIServerDNSNames: slices.Compact(slices.Sorted(slices.Values(addrs.sanDNS))),
		APIServerIPs:      uniqueIPs(addrs.sanIPs),
		Validity:          spec.PKI.Validity(),
		RenewPercentLeft:  spec.PKI.RenewPercentLeft,
	}
	if err := certs.add(func() error { _, err := pki.EnsureServer(serverPKI); return err }); err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	files := pki.Files{Dir: serverPKI.Dir}
	if err := pki.WriteRenewalPolicy(files.Dir, pki.RenewalPolicy{RenewPercentLeft: spec.PKI.RenewPercentLeft}); err != nil {
		return nil, err
	}
	store, err := s.datastore(addrs, etcdJoin, certs)
	if err != nil {
		return nil, err
	}
	// With more than one server possible, only one scheduler and one
	// controller-manager may act at a time.
	leaderElect := spec.Storage.Type != config.StorageSQLite
	flags := &controlplane.FlagRecord{Path: s.Layout.ComponentFlags()}
	apiServer := &controlplane.APIServer{
		PKI:              files,
		BindAddress:      addrs.bind,
		AdvertiseAddress: addrs.advertise,
		Port:             spec.API.Port,
		ServiceCIDR:      spec.Network.ServiceCIDR,
		ClusterDomain:    spec.Network.ClusterDomain,
		Etcd:             store.Client,
		DatastoreDir:     s.localDatastoreDir(),
		EncryptionAtRest: spec.API.EncryptionAtRest,
		Encryption:       s.encryptionSettings(),
		PodSecurity: controlplane.PodSecurityLevels{
			Enforce: spec.API.PodSecurity.Enforce, Audit: spec.API.PodSecurity.Audit, Warn: spec.API.PodSecurity.Warn,
		},
		Audit:     s.audit(),
		CIS:       spec.Profile == config.ProfileCIS,
		ExtraArgs: spec.API.ExtraArgs,
		Flags:     flags,
	}
	var tunnels *tunnel.Server
	if mode := spec.Network.EgressSelectorMode; mode != config.EgressDisabled {
		tunnels = tunnel.NewServer()
		apiServer.Tunnels, apiServer.EgressSocket, apiServer.PodEgress = tunnels, s.Layout.EgressSocket(), mode != config.EgressAgent
	}
	scheduler := &controlplane.Scheduler{
		PKI:         files,
		Port:        schedulerPort,
		LeaderElect: leaderElect,
		ExtraArgs:   spec.Scheduler.ExtraArgs,
		Flags:       flags,
	}
	controllerManager := &controlplane.ControllerManager{
		PKI:             files,
		FlexVolumeDir:   s.Layout.FlexVolumeDir(),
		PodCIDR:         spec.Network.PodCIDR,
		ServiceCIDR:     spec.Network.ServiceCIDR,
		Port:            controllerManagerPort,
		LeaderElect:     leaderElect,
		SigningDuration: spec.PKI.Validity(),
		CIS:             spec.Profile == config.ProfileCIS,
		ExtraArgs:       spec.ControllerManager.ExtraArgs,
		Flags:           flags,
	}
	joinController := &nodejoin.Controller{Kubeconfig: files.SelfKubeconfig(), Settings: s.clusterSettings(), Registries: s.published}
	components := []component.Component{store, apiServer, controllerManager, scheduler, joinController,
		&manifests.Deployer{Kubeconfig: files.SelfKubeconfig(), Dir: s.Layout.ManifestsDir()}}
	if tunnels != nil {
		egress := &tunnel.Egress{Tunnels: tunnels, Mode: spec.Network.EgressSelectorMode, Socket: s.Layout.EgressSocket(),
			Kubeconfig: files.SelfKubeconfig(), ServiceCIDR: spec.Network.ServiceCIDR}
		components = slices.Insert(components, 2, component.Component(egress))
	}
	if spec.Storage.Embedded() && s.Token == "" && datastore.NeedsMigration(s.Layout.DBFile()) {
		// A SQLite server switched to etcd: its objects move over first.
		klog.InfoS("This server's SQLite datastore will be migrated into etcd", "database", s.Layout.DBFile())
		components = slices.Insert(components, 1, component.Component(&datastore.Migration{Layout: s.Layout, DBFile: s.Layout.DBFile(), To: store.Client}))
	}
	if snapshots := spec.Storage.Snapshots; snapshots.Schedule != "" && (spec.Storage.Type == config.StorageSQLite || spec.Storage.Embedded()) {
		components = append(components, &backup.Schedule{
			Request: backup.Request{Layout: s.Layout, Storage: spec.Storage, ConfigFile: s.ConfigPath, SaveDir: s.Layout.SnapshotsDir()},
			Cron:    snapshots.Schedule, Retention: snapshots.Retention,
		})
	}
	if spec.Addons.CoreDNS.On() {
		components = append(components, &addons.NodeHosts{Kubeconfig: files.SelfKubeconfig()})
	}
	acting, err := s.actingControllers(files, leaderElect)
	if err != nil {
		return nil, err
	}
	components = append(components, acting...)
	if s.EnableWorker {
		parts, err := s.nodeComponents(files, addrs, controllerManager, certs)
		if err != nil {
			return nil, err
		}
		// The container runtime needs nothing from the cluster: it starts,
		// and imports the images, while the control plane comes up.
		components = slices.Concat(components[:1], parts.Runtime, components[1:], parts.Node)
	}
	identity, err := node.NewIdentity(spec.Worker)
	if err != nil {
		return nil, err
	}
	keys := &encryption.Syncer{Kubeconfig: files.SelfKubeconfig(), Files: encryption.Files{Dir: files.Dir}, CAKey: files.CAKey(),
		Server: identity.Name, Address: addrs.advertise, Enabled: spec.API.EncryptionAtRest, Settings: s.encryptionSettings()}
	// Last: its Ready waits for its first report to the cluster, which
	// nothing else needs before the node is up.
	caRotation := &carotation.Syncer{Kubeconfig: files.SelfKubeconfig(), Files: files, Server: identity.Name, Address: addrs.advertise}
	if s.EnableWorker {
		caRotation.NodeName = identity.Name
	}
	components = append(components, keys, &certificateRenewal{certs: certs, every: renewEvery}, caRotation)
	return component.NewManager(components...), nil
}

func uniqueIPs(ips []net.IP) []net.IP {
	var out []net.IP
	for _, ip := range ips {
		if ip != nil && !slices.ContainsFunc(out, ip.Equal) {
			out = append(out, ip)
		}
	}
	return out
}

// storagePath is where this server's node keeps local-path volumes.
func (s *Server) storagePath() string {
	if path := s.Config.Spec.Addons.LocalStorage.Path; path != "" {
		return path
	}
	return s.Layout.StorageDir()
}

// addons are the add-ons this server runs: the config's. metrics-server
// runs on a node; a server that is not one reaches its pod through that
// node's tunnel, unless the egress mode keeps pods out of the tunnels.
func (s *Server) addons() config.AddonsSpec {
	spec := s.Config.Spec.Addons
	if !s.EnableWorker && spec.MetricsServer.On() {
		switch s.Config.Spec.Network.EgressSelectorMode {
		case config.EgressPod, config.EgressCluster:
			klog.InfoS("metrics-server is deployed; this server is not a node, so metrics (kubectl top, HPAs) wait for a first node to join")
		default:
			klog.InfoS("metrics-server is deployed, but this server is not a node and spec.network.egressSelectorMode keeps pods out of the node tunnels: metrics.k8s.io stays unavailable unless this machine reaches the pod network",
				"egressSelectorMode", s.Config.Spec.Network.EgressSelectorMode)
		}
	}
	if spec.Traefik.On() && !spec.HelmController.On() {
		klog.InfoS("Traefik is not deployed: the Helm controller that installs it is off (spec.addons.helmController)")
		off := false
		spec.Traefik.Enabled = &off
	}
	return spec
}

// encryptionSettings are how this server makes encryption keys.
func (s *Server) encryptionSettings() encryption.Settings {
	spec := s.Config.Spec.SecretsEncryption
	return encryption.Settings{Provider: spec.Provider, KMSEndpoint: spec.KMS.Endpoint, KMSTimeout: spec.KMSTimeout()}
}

// audit is the API server's audit log, or none when spec.api.audit is off.
func (s *Server) audit() controlplane.Audit {
	spec := s.Config.Spec.API.Audit
	if !spec.Enabled {
		return controlplane.Audit{}
	}
	return controlplane.Audit{Path: s.Layout.AuditLog(), Policy: spec.Policy, MaxSizeMB: spec.MaxSizeMB,
		MaxBackups: spec.MaxBackups, MaxAgeDays: spec.MaxAgeDays, Webhook: spec.Webhook}
}

// localDatastoreDir is where this server's own datastore keeps its data,
// empty when the data lives in PostgreSQL, MySQL or an external etcd.
func (s *Server) localDatastoreDir() string {
	storage := s.Config.Spec.Storage
	switch {
	case storage.Type == config.StorageSQLite:
		return filepath.Dir(s.Layout.DBFile())
	case storage.Embedded():
		return s.Layout.EtcdDir()
	}
	return ""
}
