package scale

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// podTracker watches the load's pods and notes, per pod, when the watch
// first saw it, when it was bound and when it was Running: pod startup
// latency as clusterloader2 measures it from the client's side.
type podTracker struct {
	mu      sync.Mutex
	created map[types.UID]time.Time
	bound   map[types.UID]time.Time
	running map[types.UID]time.Time
	live    map[types.UID]bool
}

func trackPods(ctx context.Context, client kubernetes.Interface) (*podTracker, error) {
	t := &podTracker{created: map[types.UID]time.Time{}, bound: map[types.UID]time.Time{},
		running: map[types.UID]time.Time{}, live: map[types.UID]bool{}}
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = loadLabel + "=true"
	}))
	informer := factory.Core().V1().Pods().Informer()
	_, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { t.see(obj) },
		UpdateFunc: func(_, obj any) { t.see(obj) },
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok {
				t.mu.Lock()
				delete(t.live, pod.UID)
				t.mu.Unlock()
			}
		},
	})
	if err != nil {
		return nil, err
	}
	factory.Start(ctx.Done())
	cache.WaitForCacheSync(ctx.Done(), informer.HasSynced)
	return t, nil
}

func (t *podTracker) see(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.created[pod.UID]; !ok {
		t.created[pod.UID] = now
	}
	if pod.DeletionTimestamp == nil {
		t.live[pod.UID] = true
	}
	if _, ok := t.bound[pod.UID]; !ok && pod.Spec.NodeName != "" {
		t.bound[pod.UID] = now
	}
	if _, ok := t.running[pod.UID]; !ok && pod.Status.Phase == corev1.PodRunning {
		t.running[pod.UID] = now
	}
}

// counts are the pods alive, and alive and Running.
func (t *podTracker) counts() (live, running int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for uid := range t.live {
		live++
		if _, ok := t.running[uid]; ok {
			running++
		}
	}
	return live, running
}

// startups are the creation-to-Running latencies of every pod seen
// Running, how many pods were bound, and the most bound in one second
// (clusterloader2 reports the scheduler's throughput the same way).
func (t *podTracker) startups() (latencies []time.Duration, bound int, peakPerSecond int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for uid, running := range t.running {
		latencies = append(latencies, running.Sub(t.created[uid]))
	}
	perSecond := map[int64]int{}
	for _, at := range t.bound {
		perSecond[at.Unix()]++
	}
	for _, n := range perSecond {
		peakPerSecond = max(peakPerSecond, n)
	}
	return latencies, len(t.bound), peakPerSecond
}
