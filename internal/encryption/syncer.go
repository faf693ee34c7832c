package encryption

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"reflect"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/kubeclient"
)

// Syncer runs on every server: it publishes the keys when the cluster has
// none yet, writes the cluster's keys into this server's configuration
// when a rotation changes them (the API server reloads the file by
// itself), and reports once the API server has loaded them.
type Syncer struct {
	Kubeconfig string // a privileged identity on the local API server
	Files      Files
	CAKey      string // the cluster CA's private key file
	// Server and Address identify this server in the cluster's records;
	// Address is the API server's advertised address, as the kubernetes
	// Service's endpoints list it.
	Server, Address string
	Enabled         bool
	Settings        Settings

	component.Task
	// reported is closed after the first sync that succeeded.
	reported     chan struct{}
	reportedOnce sync.Once
}

var _ component.Component = (*Syncer)(nil)

func (s *Syncer) Name() string { return "secrets-encryption" }

func (s *Syncer) Init(context.Context) error { return nil }

func (s *Syncer) Start(ctx context.Context) error {
	client, err := kubeclient.New(s.Kubeconfig)
	if err != nil {
		return err
	}
	caKey, err := os.ReadFile(s.CAKey)
	if err != nil {
		return fmt.Errorf("read the cluster CA key: %w", err)
	}
	s.reported = make(chan struct{})
	s.Go(ctx, func(ctx context.Context) error {
		factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(metav1.NamespaceSystem),
			informers.WithTweakListOptions(func(o *metav1.ListOptions) {
				o.FieldSelector = fields.OneTermEqualSelector("metadata.name", ConfigMapName).String()
			}))
		configMaps := factory.Core().V1().ConfigMaps()
		changed, err := kubeclient.Changes(configMaps.Informer())
		if err != nil {
			return err
		}
		factory.Start(ctx.Done())
		defer factory.Shutdown()
		pass := func() {
			cm, err := configMaps.Lister().ConfigMaps(metav1.NamespaceSystem).Get(ConfigMapName)
			if apierrors.IsNotFound(err) {
				err = s.publish(ctx, client, caKey)
			} else if err == nil {
				err = s.sync(ctx, client, caKey, cm)
			}
			if err != nil {
				klog.V(2).InfoS("Secrets encryption keys not in sync yet", "reason", err.Error())
				return
			}
			s.reportedOnce.Do(func() { close(s.reported) })
		}
		if !cache.WaitForCacheSync(ctx.Done(), configMaps.Informer().HasSynced) {
			return nil
		}
		pass()
		// The API server reloads the file on its own schedule: look again
		// now and then until it has.
		ticker := time.NewTicker(time.Second)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-changed:
			case <-ticker.C:
			}
			pass()
		}
	})
	return nil
}

// firstReportWait bounds how long Ready waits for the first report.
const firstReportWait = 15 * time.Second

// Ready waits for the first report, so that a rotation started right
// after the server is ready sees this server's current settings. A server
// that cannot report yet still starts; status shows its old record.
func (s *Syncer) Ready(ctx context.Context) error {
	select {
	case <-s.reported:
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(firstReportWait):
		klog.InfoS("Secrets encryption keys not in sync yet; going on", "waited", firstReportWait)
	}
	return nil
}

func (s *Syncer) Stop() error { return s.Task.Stop(10 * time.Second) }

// publish gives the cluster this server's keys when it has none: the
// first server with encryption on.
func (s *Syncer) publish(ctx context.Context, client kubernetes.Interface, caKey []byte) error {
	keys, err := s.Files.Keys()
	if err != nil || len(keys) == 0 {
		return err
	}
	state := State{Generation: 1, Stage: StageStart, Keys: keys, Servers: map[string]Record{}}
	if err := state.Save(ctx, client, caKey); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	klog.InfoS("Published the secrets encryption keys for the cluster's servers", "writeKey", keys[0].Name)
	return nil
}

// sync makes this server's file hold the cluster's keys and reports how
// far its API server got.
func (s *Syncer) sync(ctx context.Context, client kubernetes.Interface, caKey []byte, cm *corev1.ConfigMap) error {
	state, err := decode(cm.DeepCopy(), caKey)
	if err != nil {
		return err
	}
	if len(state.Keys) == 0 {
		return nil
	}
	changed, err := s.Files.Write(state.Keys, s.Enabled)
	if err != nil {
		return err
	}
	if changed {
		klog.InfoS("Wrote the cluster's secrets encryption keys; the API server reloads them", "generation", state.Generation,
			"stage", state.Stage, "writeKey", state.Keys[0].Name, "keys", len(state.Keys))
	}
	record := Record{Address: s.Address, Generation: state.Generation, Loaded: true, WriteKey: state.Keys[0].Name,
		Enabled: s.Enabled, Settings: s.Settings}
	old := state.Servers[s.Server]
	old.Time = time.Time{}
	// Once reported loaded, nothing is left to look at until the keys
	// change: reading every metric each second would cost an idle server.
	if !changed && reflect.DeepEqual(old, record) {
		return nil
	}
	if record.Loaded, err = s.loaded(); err != nil {
		return err
	}
	if reflect.DeepEqual(old, record) {
		return nil
	}
	record.Time = time.Now().UTC().Truncate(time.Second)
	state.Servers[s.Server] = record
	if err := state.Save(ctx, client, caKey); err != nil {
		return err
	}
	if record.Loaded {
		klog.InfoS("The API server uses the cluster's secrets encryption keys", "generation", state.Generation, "writeKey", record.WriteKey)
	}
	return nil
}

// loaded is whether the API server in this process runs with the
// configuration now in the file: it reports the hash of what it loaded
// as a metric, and the file's hash is computed the same way.
func (s *Syncer) loaded() (bool, error) {
	data, err := os.ReadFile(s.Files.Config())
	if err != nil {
		return false, fmt.Errorf("read encryption config: %w", err)
	}
	want := fmt.Sprintf("sha256:%x", sha256.Sum256(data))
	families, err := legacyregistry.DefaultGatherer.Gather()
	if err != nil {
		return false, fmt.Errorf("read the API server's metrics: %w", err)
	}
	for _, family := range families {
		if family.GetName() != loadedConfigMetric {
			continue
		}
		for _, metric := range family.GetMetric() {
			for _, label := range metric.GetLabel() {
				if label.GetName() == "hash" && label.GetValue() == want {
					return true, nil
				}
			}
		}
	}
	return false, nil
}

// loadedConfigMetric is the API server's record of the encryption
// configuration it runs with (k8s.io/apiserver encryptionconfig metrics).
const loadedConfigMetric = "apiserver_encryption_config_controller_last_config_info"
