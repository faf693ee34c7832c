package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"time"

	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/config"
	"github.com/monokube/monokube/internal/join"
	"github.com/monokube/monokube/internal/pki"
	"github.com/monokube/monokube/internal/worker/bootstrap"
)

// joinTimeout bounds the wait for a server of the token to answer.
const joinTimeout = 5 * time.Minute

// joinCluster prepares a server started with a controller token: on the
// first start it fetches the cluster's shared keys (CAs, service-account
// and encryption keys) over a connection checked against the token's CA
// pin, and it returns the etcd client URLs an embedded member joins
// through. A server that already holds the keys only needs the URLs.
func (s *Server) joinCluster(ctx context.Context) ([]string, error) {
	token, err := s.joinToken()
	if err != nil {
		return nil, err
	}
	storage := s.Config.Spec.Storage
	if _, err := os.Stat(pki.Files{Dir: s.Layout.PKIDir()}.CAKey()); errors.Is(err, os.ErrNotExist) {
		if err := s.fetchKeys(ctx, token); err != nil {
			return nil, err
		}
	}
	if !storage.Embedded() {
		return nil, nil
	}
	var urls []string
	for _, server := range token.Servers {
		u, err := url.Parse(server)
		if err != nil {
			continue
		}
		urls = append(urls, "https://"+net.JoinHostPort(u.Hostname(), strconv.Itoa(storage.Etcd.ClientPort)))
	}
	return urls, nil
}

// joinToken checks the token and the config before anything is written.
func (s *Server) joinToken() (join.Token, error) {
	token, err := join.Parse(s.Token)
	if err != nil {
		return token, fmt.Errorf("--token: %w", err)
	}
	if token.Role != join.RoleController {
		return token, fmt.Errorf("--token: this is a %s token, which joins with `monokube worker`; a server needs one from `monokube token create --role controller`", token.Role)
	}
	if s.Config.Spec.Storage.Type == config.StorageSQLite {
		return token, errors.New("spec.storage.type: sqlite keeps the cluster's state in one server's file, so no second server can join; use etcd (embedded), postgres or mysql on every server")
	}
	return token, nil
}

func (s *Server) fetchKeys(ctx context.Context, token join.Token) error {
	if token.Expired(time.Now()) {
		return fmt.Errorf("--token: it expired at %s; create a new one on a server with `monokube token create --role controller`", token.Expires.Format(time.RFC3339))
	}
	ctx, cancel := context.WithTimeout(ctx, joinTimeout)
	defer cancel()
	klog.InfoS("Joining the cluster as a server", "servers", token.Servers)
	server, ca, err := bootstrap.Discover(ctx, token)
	if err != nil {
		return err
	}
	client, _, err := bootstrap.TokenClient(server, ca, token)
	if err != nil {
		return err
	}
	settings, err := bootstrap.FetchClusterSettings(ctx, client)
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	if err := s.sameSettings(settings); err != nil {
		return err
	}
	sealed, err := join.FetchKeys(ctx, client, token.Bootstrap)
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	if err := os.MkdirAll(s.Layout.PKIDir(), 0o700); err != nil {
		return fmt.Errorf("create PKI dir: %w", err)
	}
	if err := join.OpenKeys(sealed, token.Bootstrap, s.Layout.PKIDir()); err != nil {
		return fmt.Errorf("join: %w", err)
	}
	klog.InfoS("Received the cluster's keys", "server", server)
	return nil
}

// sameSettings refuses a server whose config would give the cluster a
// second, different network: every server publishes its settings.
func (s *Server) sameSettings(cluster join.ClusterSettings) error {
	mine := s.clusterSettings()
	if cluster.ClusterName != mine.ClusterName {
		return fmt.Errorf("metadata.name: this server's config says %q, the cluster's servers %q; use the same config on every server", mine.ClusterName, cluster.ClusterName)
	}
	if !reflect.DeepEqual(cluster.Network, mine.Network) {
		return fmt.Errorf("spec.network: this server's config differs from the cluster's servers (theirs: %+v); use the same config on every server", cluster.Network)
	}
	return nil
}
