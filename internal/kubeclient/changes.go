package kubeclient

import "k8s.io/client-go/tools/cache"

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
