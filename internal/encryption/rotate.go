package encryption

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Rotation drives a key change across the cluster from one server: it
// changes the cluster's state one step at a time and waits, after each
// step, until every running server's API server has loaded it. Run again
// after an interruption, each command goes on from the stage it finds.
type Rotation struct {
	Client kubernetes.Interface
	CAKey  []byte
	// Wait bounds each wait for the servers.
	Wait time.Duration
	// Log reports each step (the commands print it).
	Log func(format string, args ...any)
}

// Rotate makes a new key the write key on every server; the old key still
// reads what it wrote until Reencrypt.
func (r *Rotation) Rotate(ctx context.Context) error {
	state, err := r.load(ctx)
	if err != nil {
		return err
	}
	switch state.Stage {
	case StageRotated, StageReencrypting:
		return fmt.Errorf("stage %s: a rotation is under way; finish it with `monokube secrets-encrypt reencrypt` first", state.Stage)
	case StagePrepared:
		r.Log("Going on from stage prepared (key %s is on every server for reading)", state.Keys[len(state.Keys)-1].Name)
	default:
		live, err := liveServers(ctx, r.Client)
		if err != nil {
			return err
		}
		settings, err := agreedSettings(state, orRecorded(live, state))
		if err != nil {
			return err
		}
		key, err := NewKey(settings, state.Keys)
		if err != nil {
			return err
		}
		// Every server learns to read the new key before any writes
		// with it: otherwise a Secret written by one server is
		// unreadable on another for a while.
		state, err = r.step(ctx, StagePrepared, append(slices.Clone(state.Keys), key))
		if err != nil {
			return err
		}
		r.Log("Key %s (%s) is on every server, for reading", key.Name, key.Provider)
	}
	newest := state.Keys[len(state.Keys)-1]
	rest := state.Keys[:len(state.Keys)-1]
	if _, err := r.step(ctx, StageRotated, append([]Key{newest}, rest...)); err != nil {
		return err
	}
	r.Log("Key %s now encrypts every Secret written; run `monokube secrets-encrypt reencrypt` to rewrite the others and drop the old keys", newest.Name)
	return nil
}

// Reencrypt rewrites every Secret under the write key, then drops every
// other key from every server.
func (r *Rotation) Reencrypt(ctx context.Context) error {
	state, err := r.load(ctx)
	if err != nil {
		return err
	}
	if state.Stage == StagePrepared {
		return errors.New("stage prepared: the new key is not the write key yet; run `monokube secrets-encrypt rotate` to finish that first")
	}
	if state, err = r.step(ctx, StageReencrypting, state.Keys); err != nil {
		return err
	}
	if err := r.rewriteSecrets(ctx); err != nil {
		return err
	}
	if _, err := r.step(ctx, StageReencrypted, state.Keys[:1]); err != nil {
		return err
	}
	r.Log("Every Secret is under key %s; the other keys are gone from every server", state.Keys[0].Name)
	return nil
}

// rewriteWorkers is how many Secrets are rewritten at once: enough to
// keep a server's datastore busy, few enough to leave room for everyone
// else's requests.
const rewriteWorkers = 4

// rewriteSecrets updates every Secret without changing it: the API server
// stores again, under its write key, any object it read with another key.
func (r *Rotation) rewriteSecrets(ctx context.Context) error {
	list, err := r.Client.CoreV1().Secrets(metav1.NamespaceAll).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		return fmt.Errorf("list Secrets: %w", err)
	}
	total := len(list.Items)
	r.Log("Rewriting %d Secrets under the write key", total)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan *corev1.Secret)
	var done atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range rewriteWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for secret := range work {
				if err := r.rewrite(ctx, secret); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
				done.Add(1)
			}
		}()
	}
	start := time.Now()
	ticker := time.NewTicker(2 * time.Second)
	defer ticker.Stop()
feed:
	for i := range list.Items {
		for {
			select {
			case work <- &list.Items[i]:
				continue feed
			case <-ticker.C:
				r.Log("Rewritten %d/%d Secrets", done.Load(), total)
			case <-ctx.Done():
				break feed
			}
		}
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	elapsed := time.Since(start)
	r.Log("Rewritten %d/%d Secrets in %s (%.0f/s)", done.Load(), total, elapsed.Round(time.Millisecond), float64(done.Load())/max(elapsed.Seconds(), 0.001))
	return nil
}

// rewrite stores secret again as listed; when it changed since, it reads
// it again (whoever changed it wrote it under the write key already, but
// checking costs one read).
func (r *Rotation) rewrite(ctx context.Context, secret *corev1.Secret) error {
	namespace, name := secret.Namespace, secret.Name
	secrets := r.Client.CoreV1().Secrets(namespace)
	for attempt := 0; ; attempt++ {
		_, err := secrets.Update(ctx, secret, metav1.UpdateOptions{})
		switch {
		case err == nil || apierrors.IsNotFound(err):
			return nil // a deleted Secret leaves nothing under the old key
		case !apierrors.IsConflict(err) || attempt >= 5:
			return fmt.Errorf("rewrite Secret %s/%s: %w", namespace, name, err)
		}
		secret, err = secrets.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read Secret %s/%s: %w", namespace, name, err)
		}
	}
}

func (r *Rotation) load(ctx context.Context) (State, error) {
	state, found, err := Load(ctx, r.Client, r.CAKey)
	if err != nil {
		return state, err
	}
	if !found || len(state.Keys) == 0 {
		return state, errors.New("secrets encryption has no keys in this cluster: switch it on with spec.api.encryptionAtRest: true and restart the server")
	}
	return state, nil
}

// step saves the next generation with keys and waits until every running
// server loaded it.
func (r *Rotation) step(ctx context.Context, stage string, keys []Key) (State, error) {
	for {
		state, err := r.load(ctx)
		if err != nil {
			return state, err
		}
		state.Generation++
		state.Stage, state.Keys = stage, keys
		err = state.Save(ctx, r.Client, r.CAKey)
		if apierrors.IsConflict(err) {
			continue // a server reported meanwhile
		}
		if err != nil {
			return state, err
		}
		r.Log("Stage %s (generation %d): waiting for every server to load it", stage, state.Generation)
		return state, r.waitForServers(ctx, state.Generation)
	}
}

// waitForServers waits until every server the kubernetes Service lists
// reports the generation loaded. Servers that stopped drop out of that
// list; one that starts later loads the newest keys when it starts.
func (r *Rotation) waitForServers(ctx context.Context, generation int64) error {
	ctx, cancel := context.WithTimeout(ctx, r.Wait)
	defer cancel()
	var missing []string
	for {
		live, err := liveServers(ctx, r.Client)
		if err == nil {
			var state State
			if state, _, err = Load(ctx, r.Client, r.CAKey); err == nil {
				servers := orRecorded(live, state)
				missing = notLoaded(state, servers, generation)
				if len(servers) == 0 {
					missing = []string{"(none has reported yet)"}
				}
				if len(missing) == 0 {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("waiting for the servers to load generation %d: %w", generation, err)
			}
			return fmt.Errorf("servers %s did not load generation %d within %s (see `monokube secrets-encrypt status`; run the command again to go on)",
				strings.Join(missing, ", "), generation, r.Wait)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// notLoaded lists the live addresses without a record of generation loaded.
func notLoaded(state State, live []string, generation int64) []string {
	var missing []string
	for _, address := range live {
		ok := false
		for _, record := range state.Servers {
			if record.Address == address && record.Generation >= generation && record.Loaded {
				ok = true
			}
		}
		if !ok {
			missing = append(missing, address)
		}
	}
	return missing
}

// liveServers are the API servers' addresses: the endpoint reconciler
// keeps each running server there and takes a stopped one out.
func liveServers(ctx context.Context, client kubernetes.Interface) ([]string, error) {
	list, err := client.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{
		LabelSelector: discoveryv1.LabelServiceName + "=kubernetes",
	})
	if err != nil {
		return nil, fmt.Errorf("list the API servers: %w", err)
	}
	var out []string
	for _, slice := range list.Items {
		for _, endpoint := range slice.Endpoints {
			out = append(out, endpoint.Addresses...)
		}
	}
	sort.Strings(out)
	return out, nil
}

// orRecorded is live, or when the kubernetes Service lists no server (an
// API server advertising a loopback address is never listed) every server
// that ever reported: waiting for too many is safe, for none is not.
func orRecorded(live []string, state State) []string {
	if len(live) > 0 {
		return live
	}
	var all []string
	for _, record := range state.Servers {
		all = append(all, record.Address)
	}
	return all
}

// agreedSettings is how the running servers would make a new key; they
// must agree.
func agreedSettings(state State, live []string) (Settings, error) {
	var settings *Settings
	var names []string
	for name, record := range state.Servers {
		if slices.Contains(live, record.Address) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		s := state.Servers[name].Settings
		if settings == nil {
			settings = &s
			continue
		}
		if *settings != s {
			return Settings{}, fmt.Errorf("servers disagree on spec.secretsEncryption: %s has provider %q, another %q; make their configs equal and restart them", name, s.Provider, settings.Provider)
		}
	}
	if settings == nil {
		return Settings{Provider: state.Keys[0].Provider, KMSEndpoint: state.Keys[0].Endpoint}, nil
	}
	return *settings, nil
}

// Status is what `secrets-encrypt status` shows.
type Status struct {
	Found bool
	State State
	// Live are the running servers' addresses.
	Live []string
	// LocalFile and LocalWriteKey are this server's configuration.
	LocalFile, LocalWriteKey string
}

// ReadStatus reads the cluster's state and this server's file.
func ReadStatus(ctx context.Context, client kubernetes.Interface, caKey []byte, local Files) (Status, error) {
	var status Status
	var err error
	if status.State, status.Found, err = Load(ctx, client, caKey); err != nil {
		return status, err
	}
	if status.Live, err = liveServers(ctx, client); err != nil {
		return status, err
	}
	keys, err := local.Keys()
	if err != nil {
		return status, err
	}
	status.LocalFile, status.LocalWriteKey = local.Config(), "none"
	if len(keys) > 0 {
		status.LocalWriteKey = keys[0].Name
	}
	return status, nil
}
