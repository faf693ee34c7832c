package manifests

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/restmapper"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/kubeclient"
)

const (
	// pollInterval bounds how long a change to the directory waits.
	pollInterval = 2 * time.Second
	// retryInterval spaces out attempts at a stack that failed.
	retryInterval = 10 * time.Second
)

// Deployer is the component that keeps the cluster in step with the
// manifests directory.
type Deployer struct {
	Kubeconfig string // a privileged identity on the local API server
	Dir        string

	component.Task
	client  kubernetes.Interface
	applier *applier
	records *records
	// failedAt remembers when a stack at a checksum last failed.
	failedAt map[string]time.Time
	// lastScanErr avoids logging the same broken directory every poll.
	lastScanErr string
}

var _ component.Component = (*Deployer)(nil)

func (d *Deployer) Name() string { return "manifests" }

func (d *Deployer) Init(context.Context) error {
	if err := os.MkdirAll(d.Dir, 0o755); err != nil {
		return fmt.Errorf("create manifests directory: %w", err)
	}
	return nil
}

func (d *Deployer) Start(ctx context.Context) error {
	restConfig, err := kubeclient.Config(d.Kubeconfig, kubeclient.WithRate(50, 100))
	if err != nil {
		return err
	}
	d.client, err = kubernetes.NewForConfig(restConfig)
	if err != nil {
		return fmt.Errorf("manifests client: %w", err)
	}
	dynamicClient, err := dynamic.NewForConfig(restConfig)
	if err != nil {
		return fmt.Errorf("manifests client: %w", err)
	}
	discoveryClient, err := discovery.NewDiscoveryClientForConfig(restConfig)
	if err != nil {
		return fmt.Errorf("manifests client: %w", err)
	}
	d.applier = &applier{
		client: dynamicClient,
		mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(discoveryClient)),
	}
	d.records = newRecords(d.client)
	d.failedAt = map[string]time.Time{}
	d.Go(ctx, d.run)
	return nil
}

// Ready does not wait for the stacks: add-ons come up after the node does.
func (d *Deployer) Ready(context.Context) error { return nil }

func (d *Deployer) Stop() error {
	err := d.Task.Stop(10 * time.Second)
	if d.records != nil {
		d.records.shutdown()
	}
	return err
}

func (d *Deployer) run(ctx context.Context) error {
	if err := d.records.load(ctx); err != nil {
		return err
	}
	klog.InfoS("Applying the manifests directory", "dir", d.Dir)
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	for {
		d.sync(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// sync applies new and changed stacks and removes the ones gone from disk.
func (d *Deployer) sync(ctx context.Context) {
	stacks, err := Scan(d.Dir)
	if err != nil {
		if err.Error() != d.lastScanErr {
			klog.ErrorS(err, "Cannot read the manifests directory; nothing is applied or removed until it is fixed")
			d.lastScanErr = err.Error()
		}
		return
	}
	d.lastScanErr = ""
	present := map[string]bool{}
	for _, stack := range stacks {
		present[stack.Name] = true
		d.syncStack(ctx, stack)
	}
	for _, name := range d.records.names() {
		if !present[name] {
			d.remove(ctx, name)
		}
	}
}

func (d *Deployer) syncStack(ctx context.Context, stack Stack) {
	rec := d.records.get(stack.Name)
	if rec != nil && rec.checksum == stack.Checksum {
		if rec.applied {
			return
		}
		if time.Since(d.failedAt[stack.Name]) < retryInterval {
			return
		}
	}
	began := time.Now()
	objects, err := d.decode(stack)
	var kinds []schema.GroupVersionKind
	if err == nil {
		var keep map[objectKey]bool
		kinds, keep, err = d.applier.apply(ctx, stack.Name, objects)
		if err == nil && rec != nil {
			err = d.applier.prune(ctx, stack.Name, union(kinds, rec.kinds), keep)
		}
	}
	if rec != nil && err != nil {
		// Keep every type the stack ever used, so a later prune finds it all.
		kinds = union(kinds, rec.kinds)
	}
	if ctx.Err() != nil {
		return
	}
	next := &record{stack: stack.Name, files: stack.Files, checksum: stack.Checksum, kinds: kinds, applied: err == nil}
	if err != nil {
		next.message = err.Error()
		d.failedAt[stack.Name] = time.Now()
		klog.ErrorS(err, "Manifest stack not applied; the other stacks are unaffected, retrying", "stack", stack.Name, "retryIn", retryInterval)
	} else {
		delete(d.failedAt, stack.Name)
		next.message = fmt.Sprintf("applied %d objects from %s", len(objects), filepath.Join(d.Dir, stack.Files[0]))
		klog.InfoS("Applied manifest stack", "stack", stack.Name, "objects", len(objects), "took", time.Since(began).Round(time.Millisecond))
	}
	if err := d.records.put(ctx, next); err != nil {
		klog.ErrorS(err, "Cannot record manifest stack", "stack", stack.Name)
	}
}

// decode reads every file of a stack; the first bad one fails the stack.
func (d *Deployer) decode(stack Stack) ([]Object, error) {
	var objects []Object
	for _, file := range stack.Files {
		path := filepath.Join(d.Dir, file)
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read manifest: %w", err)
		}
		decoded, err := Decode(path, raw)
		if err != nil {
			return nil, err
		}
		objects = append(objects, decoded...)
	}
	return objects, nil
}

// remove deletes what a stack created once its files are gone.
func (d *Deployer) remove(ctx context.Context, name string) {
	rec := d.records.get(name)
	if err := d.applier.prune(ctx, name, rec.kinds, nil); err != nil {
		klog.ErrorS(err, "Cannot remove the objects of a deleted manifest stack; retrying", "stack", name)
		return
	}
	if err := d.records.delete(ctx, name); err != nil {
		klog.ErrorS(err, "Cannot delete manifest stack record", "stack", name)
		return
	}
	klog.InfoS("Removed manifest stack and its objects", "stack", name)
}

func union(a, b []schema.GroupVersionKind) []schema.GroupVersionKind {
	out := slices.Clone(a)
	for _, gvk := range b {
		if !slices.Contains(out, gvk) {
			out = append(out, gvk)
		}
	}
	return out
}

// eventType is what the record's Event says about a result.
func eventType(applied bool) (string, string) {
	if applied {
		return corev1.EventTypeNormal, "Applied"
	}
	return corev1.EventTypeWarning, "ApplyFailed"
}
