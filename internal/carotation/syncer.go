package carotation

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/kubeclient"
	"github.com/monokube/monokube/internal/pki"
)

// Timings of the server's part. A server restarts in well under the
// turn's limit; a turn older than that belongs to a server that died.
const (
	retryEvery    = 5 * time.Second
	heartbeat     = 20 * time.Second
	restartTurn   = 2 * time.Minute
	recordExpires = 3 * heartbeat
)

// Syncer runs on every server: it keeps a record of this server in the
// rotation's state and, when the stage changes, writes the stage's files
// into the PKI dir and restarts the server when its turn comes.
type Syncer struct {
	Kubeconfig string // a privileged identity on the local API server
	Files      pki.Files
	// Server and Address identify this server in the records.
	Server, Address string
	// NodeName is this server's node, when it runs one: its annotation
	// tells the rotation that node applied the stage too.
	NodeName string

	component.Task
}

var _ component.Component = (*Syncer)(nil)

func (s *Syncer) Name() string { return "ca-rotation" }

func (s *Syncer) Init(context.Context) error { return nil }

func (s *Syncer) Start(ctx context.Context) error {
	client, err := kubeclient.New(s.Kubeconfig)
	if err != nil {
		return err
	}
	var lastReport time.Time
	// Also on a tick: for the heartbeat, for another server's turn
	// running out, and to retry what failed.
	s.Go(ctx, func(ctx context.Context) error {
		return kubeclient.OnConfigMapChange(ctx, client, metav1.NamespaceSystem, StateConfigMap, retryEvery, func(ctx context.Context) error {
			reported, err := s.sync(ctx, client, time.Since(lastReport) > heartbeat)
			switch {
			case errors.Is(err, component.ErrRestart):
				return err
			case err != nil:
				klog.V(2).InfoS("CA rotation state not in sync yet", "reason", err.Error())
			case reported:
				lastReport = time.Now()
			}
			return nil
		})
	})
	return nil
}

func (s *Syncer) Ready(context.Context) error { return nil }

func (s *Syncer) Stop() error { return s.Task.Stop(5 * time.Second) }

// sync applies the current stage or reports that it is applied.
func (s *Syncer) sync(ctx context.Context, client kubernetes.Interface, beat bool) (reported bool, err error) {
	caKey, err := os.ReadFile(s.Files.CAKey())
	if err != nil {
		return false, fmt.Errorf("read the cluster CA key: %w", err)
	}
	state, _, err := Load(ctx, client, caKey)
	if err != nil {
		return false, err
	}
	if state.Stage == "" {
		return s.report(ctx, client, &state, beat)
	}
	files, err := state.ServerFiles()
	if err != nil {
		return false, err
	}
	stale := s.stale(files)
	if len(stale) == 0 {
		if err := s.markNode(ctx, client, state.Generation); err != nil {
			return false, err
		}
		return s.report(ctx, client, &state, beat)
	}
	if state.Restarting != "" && state.Restarting != s.Server && time.Since(state.RestartingSince) < restartTurn {
		klog.V(2).InfoS("CA rotation: waiting for another server to restart first", "server", state.Restarting)
		return false, nil
	}
	state.Restarting, state.RestartingSince = s.Server, time.Now()
	if err := state.Save(ctx, client); err != nil {
		return false, err // a conflict: another server took the turn
	}
	for _, name := range stale {
		if err := pki.WriteFile(s.Files.Path(name), files[name], fileMode(name)); err != nil {
			return false, err
		}
	}
	klog.InfoS("CA rotation: applied the stage's files; restarting this server to load them", "stage", state.Stage, "generation", state.Generation, "files", stale)
	return false, component.ErrRestart
}

// stale lists the files that differ from the stage's.
func (s *Syncer) stale(files map[string][]byte) []string {
	var stale []string
	for _, name := range sortedKeys(files) {
		current, err := os.ReadFile(s.Files.Path(name))
		if err != nil || !bytes.Equal(current, files[name]) {
			stale = append(stale, name)
		}
	}
	return stale
}

// report records this server as running the state's generation (its
// files match it and it started with them), on a change or a heartbeat,
// and gives up the restart turn if it held it.
func (s *Syncer) report(ctx context.Context, client kubernetes.Interface, state *State, beat bool) (bool, error) {
	record, ok := state.Servers[s.Server]
	holdsTurn := state.Restarting == s.Server
	if ok && record.Generation == state.Generation && record.Address == s.Address && !holdsTurn && !beat {
		return false, nil
	}
	state.Servers[s.Server] = Record{Address: s.Address, Generation: state.Generation, Time: time.Now().UTC()}
	if holdsTurn {
		state.Restarting = ""
	}
	if err := state.Save(ctx, client); err != nil && !apierrors.IsAlreadyExists(err) {
		return false, err
	}
	if !ok || record.Generation != state.Generation {
		klog.InfoS("CA rotation: this server runs the cluster's stage", "stage", state.Stage, "generation", state.Generation)
	}
	return true, nil
}

// markNode annotates this server's node with the generation it runs (the
// node restarted with the server).
func (s *Syncer) markNode(ctx context.Context, client kubernetes.Interface, generation int64) error {
	if s.NodeName == "" {
		return nil
	}
	return Annotate(ctx, client, s.NodeName, generation)
}

func fileMode(name string) os.FileMode {
	if filepath.Ext(name) == ".key" {
		return 0o600
	}
	return 0o644
}
