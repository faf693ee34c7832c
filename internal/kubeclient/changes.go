package kubeclient

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Changes signals, coalesced, whenever any of the informers sees an
// object added, updated or deleted: for controllers that recompute their
// whole state on every change rather than per object.
func Changes(informers ...cache.SharedIndexInformer) (<-chan struct{}, error) {
	changed := make(chan struct{}, 1)
	poke := func(any) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	handler := cache.ResourceEventHandlerFuncs{AddFunc: poke, DeleteFunc: poke, UpdateFunc: func(_, obj any) { poke(obj) }}
	for _, informer := range informers {
		if _, err := informer.AddEventHandler(handler); err != nil {
			return nil, err
		}
	}
	return changed, nil
}

// ConfigMapChanges signals, coalesced, every change of one ConfigMap (and
// once its first list arrived), watching it alone: what a component on
// every node can afford, where polling would cost the API server a
// request per node every few seconds. The watch ends with ctx.
func ConfigMapChanges(ctx context.Context, client kubernetes.Interface, namespace, name string) (<-chan struct{}, error) {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
		}))
	informer := factory.Core().V1().ConfigMaps().Informer()
	changed, err := Changes(informer)
	if err != nil {
		return nil, err
	}
	factory.Start(ctx.Done())
	go func() {
		<-ctx.Done()
		factory.Shutdown()
	}()
	return changed, nil
}

// OnConfigMapChange calls pass now, on every change of one ConfigMap
// (ConfigMapChanges) and every interval (for retries and timers), until
// ctx ends (nil) or pass returns an error (returned). pass logs and
// swallows what it will retry.
func OnConfigMapChange(ctx context.Context, client kubernetes.Interface, namespace, name string, interval time.Duration, pass func(context.Context) error) error {
	changed, err := ConfigMapChanges(ctx, client, namespace, name)
	if err != nil {
		return err
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		if err := pass(ctx); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-ticker.C:
		}
	}
}
