package datastore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/monokube/monokube/internal/datadir"
	"github.com/monokube/monokube/internal/pki"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/config"
)

// NewEtcdClient connects to etcd with mutual TLS.
func NewEtcdClient(endpoints []string, files config.StorageTLS) (*clientv3.Client, error) {
	var tlsConfig *tls.Config
	if files.Set() {
		var err error
		info := transport.TLSInfo{CertFile: files.CertFile, KeyFile: files.KeyFile, TrustedCAFile: files.CAFile}
		if tlsConfig, err = info.ClientConfig(); err != nil {
			return nil, fmt.Errorf("etcd client TLS: %w", err)
		}
	}
	client, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		TLS:         tlsConfig,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("connect to etcd at %s: %w", strings.Join(endpoints, ","), err)
	}
	return client, nil
}

// LocalEtcd connects to the embedded etcd of the server whose data dir is
// layout, as the etcd and backup commands do.
func LocalEtcd(layout datadir.Layout) (*clientv3.Client, error) {
	raw, err := os.ReadFile(layout.EtcdURLFile())
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s has no embedded etcd (spec.storage.type etcd without endpoints); is --data-dir right?", layout.Dir)
	}
	if err != nil {
		return nil, err
	}
	return NewEtcdClient([]string{strings.TrimSpace(string(raw))}, clientTLS(pki.EtcdFiles{Dir: layout.EtcdPKIDir()}))
}

// addLearner adds this member to the cluster at e.Join as a learner and
// returns the initial-cluster string the new member starts with. A member
// left over from an earlier attempt with the same peer URL is replaced.
func (e *Etcd) addLearner(ctx context.Context) (initialCluster string, id uint64, err error) {
	client, err := NewEtcdClient(e.Join, e.TLS())
	if err != nil {
		return "", 0, err
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	list, err := client.MemberList(ctx)
	if err != nil {
		return "", 0, fmt.Errorf("list etcd members at %s: %w", strings.Join(e.Join, ","), err)
	}
	for _, member := range list.Members {
		if member.Name == e.Member || slices.Contains(member.PeerURLs, e.peerURL()) {
			// This server's old member (its data dir was wiped): it must go
			// before a new one with the same name or URL can join.
			klog.InfoS("Removing this server's earlier etcd member before joining again", "member", member.Name, "id", fmt.Sprintf("%x", member.ID))
			if _, err := client.MemberRemove(ctx, member.ID); err != nil {
				return "", 0, fmt.Errorf("remove earlier etcd member %x: %w", member.ID, err)
			}
		}
	}
	added, err := addAsLearner(ctx, client, e.peerURL())
	if err != nil {
		return "", 0, err
	}
	var parts []string
	for _, member := range added.Members {
		name := member.Name
		if member.ID == added.Member.ID {
			name = e.Member
		}
		if name == "" {
			return "", 0, fmt.Errorf("etcd member %x (%s) was added but never started; remove it with `monokube etcd member-remove` on a server", member.ID, strings.Join(member.PeerURLs, ","))
		}
		for _, peer := range member.PeerURLs {
			parts = append(parts, name+"="+peer)
		}
	}
	klog.InfoS("Joined etcd as a learner", "member", e.Member, "id", fmt.Sprintf("%x", added.Member.ID), "members", len(added.Members))
	return strings.Join(parts, ","), added.Member.ID, nil
}

// addAsLearner retries while the cluster refuses changes for now: etcd
// rejects a member add until every voter (a member that just joined, too)
// is connected, so servers started together would otherwise fail.
func addAsLearner(ctx context.Context, client *clientv3.Client, peerURL string) (*clientv3.MemberAddResponse, error) {
	for {
		added, err := client.MemberAddAsLearner(ctx, []string{peerURL})
		if err == nil {
			return added, nil
		}
		if !strings.Contains(err.Error(), "unhealthy cluster") && !strings.Contains(err.Error(), "too many learner") {
			return nil, fmt.Errorf("add this server to etcd as a learner: %w", err)
		}
		klog.InfoS("etcd cannot take a member yet; retrying", "reason", err.Error())
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("add this server to etcd as a learner: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(2 * time.Second):
		}
	}
}

// promote makes this learner a voting member once it has caught up; etcd
// refuses earlier with ErrLearnerNotReady, so it retries.
func (e *Etcd) promote(ctx context.Context) error {
	client, err := NewEtcdClient(e.Join, e.TLS())
	if err != nil {
		return err
	}
	defer client.Close()
	for {
		attempt, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := client.MemberPromote(attempt, e.learner)
		cancel()
		if err == nil {
			klog.InfoS("Promoted this server's etcd member to a voter", "member", e.Member)
			return nil
		}
		if strings.Contains(err.Error(), "is not a learner") {
			return nil // promoted by an earlier attempt
		}
		klog.V(2).InfoS("etcd learner not promotable yet", "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("promote etcd learner: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(time.Second):
		}
	}
}

// Member is one etcd member as `etcd member-list` shows it.
type Member struct {
	ID        string
	Name      string
	PeerURL   string
	ClientURL string
	Learner   bool
}

// Members lists the cluster's members through client.
func Members(ctx context.Context, client *clientv3.Client) ([]Member, error) {
	list, err := client.MemberList(ctx)
	if err != nil {
		return nil, fmt.Errorf("list etcd members: %w", err)
	}
	var members []Member
	for _, m := range list.Members {
		members = append(members, member(m))
	}
	return members, nil
}

func member(m *etcdserverpb.Member) Member {
	out := Member{ID: fmt.Sprintf("%x", m.ID), Name: m.Name, Learner: m.IsLearner}
	if len(m.PeerURLs) > 0 {
		out.PeerURL = m.PeerURLs[0]
	}
	if len(m.ClientURLs) > 0 {
		out.ClientURL = m.ClientURLs[0]
	}
	return out
}

// RemoveMember removes the member called name (or with that hex ID).
func RemoveMember(ctx context.Context, client *clientv3.Client, name string) error {
	list, err := client.MemberList(ctx)
	if err != nil {
		return fmt.Errorf("list etcd members: %w", err)
	}
	for _, m := range list.Members {
		if m.Name == name || fmt.Sprintf("%x", m.ID) == name {
			if len(list.Members) == 1 {
				return errors.New("it is the only member; removing it would end the cluster")
			}
			if _, err := client.MemberRemove(ctx, m.ID); err != nil {
				return fmt.Errorf("remove etcd member %s: %w", name, err)
			}
			return nil
		}
	}
	return fmt.Errorf("no etcd member named %s", name)
}
