package fleet

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"
)

// Applier brings the hosts of a cluster file to what it says: the binary,
// the config, the services, joined in order; upgrades rolling; removed
// hosts drained and reset.
type Applier struct {
	File *File
	// Binary is the monokube to put on every host (this very program).
	Binary string
	// Dial reaches a host.
	Dial func(ctx context.Context, h Host) (Machine, error)
	// Out gets one line per host per step, and the summary.
	Out io.Writer
	// Kubeconfig is where the admin kubeconfig is written.
	Kubeconfig string
	// ServerURL is how this machine reaches a server's API ("" : its address).
	ServerURL func(h Host) string
	// ExtraArgs are host arguments a provider adds (a local node's cgroup root).
	ExtraArgs func(h Host) []string
	// Service is how a host runs monokube (default: its init system, or
	// the file's commands).
	Service func(h Host) service
	// MaxUnavailable nodes are upgraded at once (default 1).
	MaxUnavailable int
	// DrainTimeout bounds a node's drain; past it the upgrade stops.
	DrainTimeout time.Duration

	sum      string
	config   string
	mu       sync.Mutex
	actions  map[string][]string
	began    map[string]time.Time
	took     map[string]time.Duration
	machines map[string]Machine
	status   map[string]hostStatus
	client   kubernetes.Interface
}

// StepError names the host and the step that failed; a rerun resumes.
type StepError struct {
	Host, Step string
	Err        error
}

func (e *StepError) Error() string { return fmt.Sprintf("host %s: %s: %v", e.Host, e.Step, e.Err) }
func (e *StepError) Unwrap() error { return e.Err }

// Apply runs every step and prints the summary.
func (a *Applier) Apply(ctx context.Context) error {
	began := time.Now()
	if err := a.prepare(ctx); err != nil {
		return err
	}
	defer a.closeAll()
	if err := a.checkSkew(ctx); err != nil {
		return err
	}
	first, err := a.ensureFirstServer(ctx)
	if err != nil {
		return err
	}
	if err := a.connectAPI(ctx, first); err != nil {
		return err
	}
	for _, h := range a.File.Servers() {
		if h.Name != first.Name && !a.status[h.Name].Running {
			if err := a.joinServer(ctx, first, h); err != nil {
				return err
			}
		}
	}
	if err := a.joinWorkers(ctx, first); err != nil {
		return err
	}
	if err := a.upgrade(ctx); err != nil {
		return err
	}
	if err := a.removeGone(ctx, first); err != nil {
		return err
	}
	if err := a.record(ctx); err != nil {
		return err
	}
	a.summary(time.Since(began))
	return nil
}

// prepare hashes the binary, renders the config, reaches every host and
// reads its state.
func (a *Applier) prepare(ctx context.Context) error {
	if a.MaxUnavailable < 1 {
		a.MaxUnavailable = 1
	}
	if a.DrainTimeout == 0 {
		a.DrainTimeout = 5 * time.Minute
	}
	a.actions, a.began, a.took = map[string][]string{}, map[string]time.Time{}, map[string]time.Duration{}
	a.machines, a.status = map[string]Machine{}, map[string]hostStatus{}
	sum, err := fileSHA256(a.Binary)
	if err != nil {
		return fmt.Errorf("the binary to deploy: %w", err)
	}
	a.sum = sum
	raw, err := yaml.Marshal(a.File.ClusterConfig())
	if err != nil {
		return err
	}
	a.config = string(raw)
	fmt.Fprintf(a.Out, "cluster %s: %d hosts, binary %s (sha256 %s)\n", a.File.Metadata.Name, len(a.File.Spec.Hosts), a.Binary, sum[:12])
	return a.eachHost(ctx, a.File.Spec.Hosts, func(ctx context.Context, h Host) error {
		m, err := a.Dial(ctx, h)
		if err != nil {
			return &StepError{h.Name, "connect", err}
		}
		st, err := probe(ctx, m)
		if err != nil {
			m.Close()
			return &StepError{h.Name, "read its state", err}
		}
		a.mu.Lock()
		a.machines[h.Name], a.status[h.Name] = m, st
		a.mu.Unlock()
		state := "nothing installed"
		if st.Running {
			state = "running " + st.Version
		} else if st.Binary != "" {
			state = "installed, not running"
		}
		a.step(h, "connected: %s", state)
		return nil
	})
}

// eachHost runs do for the hosts in parallel; the first error wins.
func (a *Applier) eachHost(ctx context.Context, hosts []Host, do func(context.Context, Host) error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(hosts))
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = do(ctx, h)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// step prints one progress line for a host.
func (a *Applier) step(h Host, format string, args ...any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	fmt.Fprintf(a.Out, "  %-20s %s\n", h.Name, fmt.Sprintf(format, args...))
}

// did records an action for the summary.
func (a *Applier) did(h Host, action string, took time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.actions[h.Name] = append(a.actions[h.Name], action)
	a.took[h.Name] += took
}

func (a *Applier) closeAll() {
	for _, m := range a.machines {
		m.Close()
	}
}

func (a *Applier) service(h Host) service {
	if a.Service != nil {
		return a.Service(h)
	}
	return service{commands: h.Service}
}

// putFiles puts the binary and (servers) the config on the host where
// they differ, reporting whether anything changed.
func (a *Applier) putFiles(ctx context.Context, h Host) (changed bool, err error) {
	m, st := a.machines[h.Name], a.status[h.Name]
	if st.Binary != a.sum {
		began := time.Now()
		f, err := os.Open(a.Binary)
		if err != nil {
			return false, err
		}
		err = m.Upload(ctx, f, remoteBinary, 0o755)
		f.Close()
		if err != nil {
			return false, &StepError{h.Name, "copy the binary", err}
		}
		// What arrived is what was sent.
		out, err := m.Run(ctx, "sha256sum "+remoteBinary)
		if err != nil || !strings.HasPrefix(out, a.sum) {
			return false, &StepError{h.Name, "copy the binary", fmt.Errorf("sha256 on the host %q, want %s (%v)", strings.Fields(out + " ")[0], a.sum, err)}
		}
		a.step(h, "binary copied and checked (%s)", time.Since(began).Round(time.Millisecond))
		a.did(h, "binary", time.Since(began))
		changed = true
	}
	if h.IsServer() && st.Config != a.config {
		if err := m.Upload(ctx, strings.NewReader(a.config), remoteConfig, 0o600); err != nil {
			return false, &StepError{h.Name, "write the config", err}
		}
		a.step(h, "config written (%s)", remoteConfig)
		a.did(h, "config", 0)
		changed = true
	}
	a.mu.Lock()
	st.Binary = a.sum
	if h.IsServer() {
		st.Config = a.config
	}
	a.status[h.Name] = st
	a.mu.Unlock()
	return changed, nil
}

// args are the host's service command line.
func (a *Applier) args(h Host) []string {
	args := []string{"--node-name", h.Name}
	if h.Role == RoleServerWorker {
		args = append(args, "--enable-worker")
	}
	if h.NodeIP != "" {
		args = append(args, "--node-ip", h.NodeIP)
	}
	for _, l := range h.Labels {
		args = append(args, "--node-label", l)
	}
	for _, t := range h.Taints {
		args = append(args, "--node-taint", t)
	}
	if a.ExtraArgs != nil {
		args = append(args, a.ExtraArgs(h)...)
	}
	return append(args, h.Args...)
}

// ensureFirstServer is a running server: one the file names that already
// runs, else the first server of the file, started as the cluster's first.
func (a *Applier) ensureFirstServer(ctx context.Context) (Host, error) {
	servers := a.File.Servers()
	for _, h := range servers {
		if a.status[h.Name].Running {
			return h, nil
		}
	}
	first := servers[0]
	began := time.Now()
	if _, err := a.putFiles(ctx, first); err != nil {
		return first, err
	}
	if err := a.service(first).install(ctx, a.machines[first.Name], RoleServer, a.args(first), ""); err != nil {
		return first, &StepError{first.Name, "install and start the server", err}
	}
	a.step(first, "server started, the cluster's first")
	if err := a.waitAPI(ctx, first); err != nil {
		return first, err
	}
	a.did(first, "started (first server)", time.Since(began))
	return first, nil
}

// waitAPI waits until the host's API server is ready.
func (a *Applier) waitAPI(ctx context.Context, h Host) error {
	began := time.Now()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		st, err := probe(ctx, a.machines[h.Name])
		if err == nil && st.Running && strings.TrimSpace(st.APIReady) == "ok" {
			a.mu.Lock()
			st.Binary, st.Config = a.status[h.Name].Binary, a.status[h.Name].Config
			a.status[h.Name] = st
			a.mu.Unlock()
			a.step(h, "API server ready (%s)", time.Since(began).Round(time.Millisecond))
			return nil
		}
		if time.Now().After(deadline) {
			return &StepError{h.Name, "wait for the API server", fmt.Errorf("not ready after 5 minutes (readyz: %q, running: %v, probe: %v); see %s/monokube.log or the service's log on the host",
				st.APIReady, st.Running, err, remoteDataDir)}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// token creates a join token on the first server.
func (a *Applier) token(ctx context.Context, first Host, role string) (string, error) {
	out, err := a.machines[first.Name].Run(ctx, fmt.Sprintf("%s token create --role=%s --expiry=1h --description 'monokube cluster apply'", remoteBinary, role))
	if err != nil {
		return "", &StepError{first.Name, "create a " + role + " token", err}
	}
	return strings.TrimSpace(out), nil
}

// joinServer adds a server, and waits for it before the next one (etcd
// grows one member at a time).
func (a *Applier) joinServer(ctx context.Context, first, h Host) error {
	began := time.Now()
	token, err := a.token(ctx, first, "controller")
	if err != nil {
		return err
	}
	if _, err := a.putFiles(ctx, h); err != nil {
		return err
	}
	m := a.machines[h.Name]
	const tokenFile = "/etc/monokube/controller-token"
	if err := m.Upload(ctx, strings.NewReader(token+"\n"), tokenFile, 0o600); err != nil {
		return &StepError{h.Name, "write the controller token", err}
	}
	if err := a.service(h).install(ctx, m, RoleServer, append(a.args(h), "--token-file", tokenFile), ""); err != nil {
		return &StepError{h.Name, "install and start the server", err}
	}
	a.step(h, "server started, joining")
	if err := a.waitAPI(ctx, h); err != nil {
		return err
	}
	if h.IsNode() {
		if err := a.waitNodeReady(ctx, h, time.Time{}); err != nil {
			return err
		}
	}
	a.did(h, "joined (server)", time.Since(began))
	return nil
}

// joinWorkers adds the workers that run nothing yet, in parallel.
func (a *Applier) joinWorkers(ctx context.Context, first Host) error {
	var missing []Host
	for _, h := range a.File.Workers() {
		if !a.status[h.Name].Running {
			missing = append(missing, h)
		}
	}
	for _, h := range a.File.Servers() {
		if h.IsNode() && h.Name == first.Name {
			if err := a.waitNodeReady(ctx, h, time.Time{}); err != nil {
				return err
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	token, err := a.token(ctx, first, "worker")
	if err != nil {
		return err
	}
	return a.eachHost(ctx, missing, func(ctx context.Context, h Host) error {
		began := time.Now()
		if _, err := a.putFiles(ctx, h); err != nil {
			return err
		}
		if err := a.service(h).install(ctx, a.machines[h.Name], RoleWorker, a.args(h), token); err != nil {
			return &StepError{h.Name, "install and start the worker", err}
		}
		a.step(h, "worker started, joining")
		if err := a.waitNodeReady(ctx, h, time.Time{}); err != nil {
			return err
		}
		a.did(h, "joined (worker)", time.Since(began))
		return nil
	})
}

// summary prints a table of what each host got.
func (a *Applier) summary(took time.Duration) {
	w := tabwriter.NewWriter(a.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "\nHOST\tROLE\tCHANGES\tTOOK")
	changed := 0
	for _, h := range a.File.Spec.Hosts {
		actions := a.actions[h.Name]
		what := "no change"
		if len(actions) > 0 {
			what = strings.Join(slices.Compact(actions), ", ")
			changed++
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", h.Name, h.Role, what, a.took[h.Name].Round(100*time.Millisecond))
	}
	for _, name := range slices.Sorted(maps.Keys(a.actions)) {
		if !slices.ContainsFunc(a.File.Spec.Hosts, func(h Host) bool { return h.Name == name }) {
			fmt.Fprintf(w, "%s\t-\t%s\t%s\n", name, strings.Join(a.actions[name], ", "), a.took[name].Round(100*time.Millisecond))
			changed++
		}
	}
	w.Flush()
	if changed == 0 {
		fmt.Fprintf(a.Out, "Nothing to change: every host already is as %s says (%s).\n", a.File.Metadata.Name, took.Round(100*time.Millisecond))
	} else {
		fmt.Fprintf(a.Out, "Applied in %s.\n", took.Round(100*time.Millisecond))
	}
	fmt.Fprintf(a.Out, "Admin kubeconfig: %s\n", a.Kubeconfig)
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
