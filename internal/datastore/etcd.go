package datastore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/config"
	"github.com/monokube/monokube/internal/pki"
)

// Etcd runs an etcd member in-process. Clients (the API server, the etcd
// commands) use loopback; peers and joining servers use IP. Every
// connection is mutual TLS with the etcd CA.
type Etcd struct {
	// Member is the member's name: the server's node name.
	Member string
	// Dir holds the member's data (<data-dir>/etcd).
	Dir string
	// IP is where peers and joining servers reach this member.
	IP                   net.IP
	ClientPort, PeerPort int
	PKI                  pki.EtcdFiles
	// URLFile records the local client URL for the etcd and backup commands.
	URLFile string
	// RestoreFile is a snapshot staged by restore, used when Dir is empty.
	RestoreFile string
	// Join are client URLs of a running cluster: a member with no data yet
	// is added to that cluster as a learner and promoted once in sync.
	Join []string
	// ForceNewCluster makes this member a one-member cluster keeping its
	// data: recovery after quorum loss (server --cluster-reset).
	ForceNewCluster bool

	etcd    *embed.Etcd
	learner uint64 // this member's ID while it is a learner to promote
	stopped chan struct{}
	err     error
}

var _ Datastore = (*Etcd)(nil)

func (e *Etcd) Name() string { return "datastore" }

func (e *Etcd) Init(context.Context) error {
	if err := os.MkdirAll(filepath.Dir(e.URLFile), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(e.URLFile), err)
	}
	if err := os.MkdirAll(e.Dir, 0o700); err != nil {
		return fmt.Errorf("create etcd data dir: %w", err)
	}
	return os.Chmod(e.Dir, 0o700)
}

// HasData reports whether dir already holds an etcd member.
func HasData(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "member", "wal"))
	return err == nil
}

func (e *Etcd) clientURL() string { return e.url(net.IPv4(127, 0, 0, 1), e.ClientPort) }
func (e *Etcd) peerURL() string   { return e.url(e.IP, e.PeerPort) }

func (e *Etcd) url(ip net.IP, port int) string {
	return "https://" + net.JoinHostPort(ip.String(), strconv.Itoa(port))
}

// TLS is the client side of etcd's mutual TLS, for this package's clients.
func (e *Etcd) TLS() config.StorageTLS { return clientTLS(e.PKI) }

func clientTLS(files pki.EtcdFiles) config.StorageTLS {
	return config.StorageTLS{CAFile: files.CACert(), CertFile: files.ClientPair(), KeyFile: files.ClientPair()}
}

func (e *Etcd) Start(ctx context.Context) error {
	if err := e.restoreStaged(); err != nil {
		return err
	}
	cfg := embed.NewConfig()
	cfg.Name = e.Member
	cfg.Dir = e.Dir
	cfg.Logger, cfg.LogLevel, cfg.LogOutputs = "zap", "warn", []string{"stderr"}
	clientURLs := []url.URL{mustURL(e.clientURL())}
	if !e.IP.IsLoopback() {
		clientURLs = append(clientURLs, mustURL(e.url(e.IP, e.ClientPort)))
	}
	cfg.ListenClientUrls = clientURLs
	cfg.AdvertiseClientUrls = clientURLs[len(clientURLs)-1:]
	cfg.ListenPeerUrls = []url.URL{mustURL(e.peerURL())}
	cfg.AdvertisePeerUrls = cfg.ListenPeerUrls
	cfg.ListenMetricsUrls = nil
	cfg.ClientTLSInfo = transport.TLSInfo{CertFile: e.PKI.ServerPair(), KeyFile: e.PKI.ServerPair(), TrustedCAFile: e.PKI.CACert(), ClientCertAuth: true}
	cfg.PeerTLSInfo = transport.TLSInfo{CertFile: e.PKI.PeerPair(), KeyFile: e.PKI.PeerPair(), TrustedCAFile: e.PKI.CACert(), ClientCertAuth: true}
	// Compaction and the quota stay etcd's defaults (none, 2 GiB): the API
	// server compacts every 5 minutes itself.
	cfg.InitialCluster = e.Member + "=" + e.peerURL()
	cfg.ForceNewCluster = e.ForceNewCluster
	if !HasData(e.Dir) && len(e.Join) > 0 {
		initial, id, err := e.addLearner(ctx)
		if err != nil {
			return err
		}
		cfg.InitialCluster, cfg.ClusterState, e.learner = initial, embed.ClusterStateFlagExisting, id
	}
	etcd, err := embed.StartEtcd(cfg)
	if err != nil {
		return fmt.Errorf("start etcd: %w", err)
	}
	e.etcd = etcd
	e.stopped = make(chan struct{})
	go func() {
		defer close(e.stopped)
		select {
		case err := <-etcd.Err():
			e.err = fmt.Errorf("etcd: %w", err)
		case <-etcd.Server.StopNotify():
			e.err = errors.New("etcd stopped")
		}
	}()
	if err := os.WriteFile(e.URLFile, []byte(e.clientURL()+"\n"), 0o600); err != nil {
		return fmt.Errorf("record etcd URL: %w", err)
	}
	klog.InfoS("Datastore starting", "type", "etcd", "member", e.Member, "client", e.clientURL(), "peer", e.peerURL(), "joining", e.learner != 0, "forceNewCluster", e.ForceNewCluster)
	return nil
}

// Ready waits until the member serves and, for a new member, until it has
// caught up and been promoted to a voter: a learner refuses the API
// server's requests.
func (e *Etcd) Ready(ctx context.Context) error {
	select {
	case <-e.etcd.Server.ReadyNotify():
	case <-e.stopped:
		return e.err
	case <-ctx.Done():
		return ctx.Err()
	}
	if e.learner != 0 {
		if err := e.promote(ctx); err != nil {
			return err
		}
		e.learner = 0
	}
	klog.InfoS("Datastore ready", "type", "etcd", "member", e.Member, "id", e.etcd.Server.MemberID().String())
	return nil
}

func (e *Etcd) Client() Client {
	return Client{Endpoints: []string{e.clientURL()}, TLS: e.TLS()}
}

func (e *Etcd) Exited() <-chan struct{} { return e.stopped }
func (e *Etcd) Err() error              { return e.err }

func (e *Etcd) Stop() error {
	if e.etcd == nil {
		return nil
	}
	done := make(chan struct{})
	go func() { e.etcd.Close(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(15 * time.Second):
		return errors.New("etcd did not stop within 15s")
	}
}

func mustURL(raw string) url.URL {
	u, err := url.Parse(raw)
	if err != nil {
		panic(err) // built from an IP and a port, always valid
	}
	return *u
}
