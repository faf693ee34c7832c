package faults

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/monokube/monokube/test/history"
)

// namespace holds the workload's ConfigMaps.
const namespace = "faults"

// workload is a set of concurrent clients doing creates, updates with a
// resourceVersion precondition, deletes, gets and lists on a few
// ConfigMaps, each through one server until that server fails it, then
// through the next. Every answered call (and every write whose answer
// never came) is recorded for history.Check.
type workload struct {
	keys    []string
	servers []endpoint
	rec     history.Recorder
	// timeout bounds one call: longer and a client sits on a dead server,
	// shorter and slow-but-working servers look dead.
	timeout time.Duration

	mu sync.Mutex
	// failovers is how long each client went from its first failed call
	// to its next answered one (through another server, or the same once
	// back).
	failovers []time.Duration
	// diskFull counts writes refused because the datastore's disk was full.
	diskFull int
}

// endpoint is one server's API, as its admin kubeconfig reaches it.
type endpoint struct {
	name   string
	client rest.Interface
}

func newEndpoint(name, kubeconfig string) (endpoint, error) {
	config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return endpoint{}, err
	}
	config.QPS, config.Burst = 1000, 1000
	clientset, err := kubernetes.NewForConfig(config)
	if err != nil {
		return endpoint{}, err
	}
	return endpoint{name: name, client: clientset.CoreV1().RESTClient()}, nil
}

func newWorkload(keys int, servers []endpoint) *workload {
	w := &workload{servers: servers, timeout: 5 * time.Second}
	for i := range keys {
		w.keys = append(w.keys, fmt.Sprintf("k%d", i))
	}
	return w
}

// run starts clients goroutines and returns when ctx ends and all are done.
func (w *workload) run(ctx context.Context, clients int, seed uint64) {
	var wg sync.WaitGroup
	for id := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.client(ctx, id, rand.New(rand.NewPCG(seed, uint64(id))))
		}()
	}
	wg.Wait()
}

func (w *workload) client(ctx context.Context, id int, rng *rand.Rand) {
	server := id % len(w.servers)
	known := map[string]string{} // key → the last resourceVersion this client saw
	seq := 0
	var failingSince time.Time
	for ctx.Err() == nil {
		key := w.keys[rng.IntN(len(w.keys))]
		seq++
		value := fmt.Sprintf("c%d-%d", id, seq)
		began := time.Now()
		var answered bool
		switch roll := rng.IntN(100); {
		case roll < 20:
			answered = w.create(ctx, id, server, key, value, known)
		case roll < 50 && known[key] != "":
			answered = w.update(ctx, id, server, key, value, known)
		case roll < 50:
			// No resourceVersion to update from yet: learn it.
			answered = w.get(ctx, id, server, key, known)
		case roll < 62:
			answered = w.remove(ctx, id, server, key, known)
		case roll < 88:
			answered = w.get(ctx, id, server, key, known)
		default:
			answered = w.list(ctx, id, server, known)
		}
		switch {
		case answered && !failingSince.IsZero():
			w.mu.Lock()
			w.failovers = append(w.failovers, time.Since(failingSince))
			w.mu.Unlock()
			failingSince = time.Time{}
		case !answered && ctx.Err() == nil:
			if failingSince.IsZero() {
				failingSince = began
			}
			server = (server + 1) % len(w.servers)
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func (w *workload) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, w.timeout)
}

func configMap(key, value, rv string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: key, Namespace: namespace, ResourceVersion: rv},
		Data:       map[string]string{"v": value},
	}
}

func (w *workload) create(ctx context.Context, id, server int, key, value string, known map[string]string) bool {
	op := history.Op{Client: id, Kind: history.Create, Key: key, Value: value, Call: time.Now()}
	call, cancel := w.call(ctx)
	defer cancel()
	var out corev1.ConfigMap
	err := w.servers[server].client.Post().Namespace(namespace).Resource("configmaps").
		Body(configMap(key, value, "")).MaxRetries(0).Do(call).Into(&out)
	return w.recordWrite(op, err, &out, known)
}

func (w *workload) update(ctx context.Context, id, server int, key, value string, known map[string]string) bool {
	op := history.Op{Client: id, Kind: history.Update, Key: key, Value: value, Precondition: known[key], Call: time.Now()}
	call, cancel := w.call(ctx)
	defer cancel()
	var out corev1.ConfigMap
	err := w.servers[server].client.Put().Namespace(namespace).Resource("configmaps").Name(key).
		Body(configMap(key, value, op.Precondition)).MaxRetries(0).Do(call).Into(&out)
	return w.recordWrite(op, err, &out, known)
}

func (w *workload) remove(ctx context.Context, id, server int, key string, known map[string]string) bool {
	op := history.Op{Client: id, Kind: history.Delete, Key: key, Call: time.Now()}
	call, cancel := w.call(ctx)
	defer cancel()
	err := w.servers[server].client.Delete().Namespace(namespace).Resource("configmaps").Name(key).
		MaxRetries(0).Do(call).Error()
	return w.recordWrite(op, err, nil, known)
}

// recordWrite records a write by what its answer proves: done, refused
// for a reason the model knows, or unknown (no answer: it may have taken
// effect). A refusal that proves the write had no effect and says nothing
// of the object (a full disk, throttling) is not part of the history.
func (w *workload) recordWrite(op history.Op, err error, out *corev1.ConfigMap, known map[string]string) bool {
	op.Return = time.Now()
	switch {
	case err == nil:
		op.Outcome = history.OK
		if out != nil {
			op.Result = history.Object{Value: out.Data["v"], RV: out.ResourceVersion}
			known[op.Key] = out.ResourceVersion
		} else {
			delete(known, op.Key)
		}
	case op.Kind == history.Create && apierrors.IsAlreadyExists(err):
		op.Outcome = history.Exists
	case op.Kind == history.Update && apierrors.IsConflict(err):
		op.Outcome = history.Conflict
		delete(known, op.Key)
	case op.Kind != history.Create && apierrors.IsNotFound(err):
		op.Outcome = history.NotFound
		delete(known, op.Key)
	case strings.Contains(err.Error(), "the datastore's disk is full"):
		w.mu.Lock()
		w.diskFull++
		w.mu.Unlock()
		return true
	case apierrors.IsTooManyRequests(err):
		return true
	case errors.Is(err, syscall.ECONNREFUSED):
		// The request never reached a server (it is down): no effect.
		return false
	default:
		op.Outcome = history.Unknown
		w.rec.Record(op)
		return false
	}
	w.rec.Record(op)
	return true
}

func (w *workload) get(ctx context.Context, id, server int, key string, known map[string]string) bool {
	op := history.Op{Client: id, Kind: history.Get, Key: key, Call: time.Now()}
	call, cancel := w.call(ctx)
	defer cancel()
	var out corev1.ConfigMap
	err := w.servers[server].client.Get().Namespace(namespace).Resource("configmaps").Name(key).
		MaxRetries(0).Do(call).Into(&out)
	op.Return = time.Now()
	switch {
	case err == nil:
		op.Outcome, op.Result = history.OK, history.Object{Value: out.Data["v"], RV: out.ResourceVersion}
		known[key] = out.ResourceVersion
	case apierrors.IsNotFound(err):
		op.Outcome = history.NotFound
		delete(known, key)
	default:
		return false // a read that failed changed nothing and saw nothing
	}
	w.rec.Record(op)
	return true
}

func (w *workload) list(ctx context.Context, id, server int, known map[string]string) bool {
	op := history.Op{Client: id, Kind: history.List, Call: time.Now()}
	call, cancel := w.call(ctx)
	defer cancel()
	var out corev1.ConfigMapList
	err := w.servers[server].client.Get().Namespace(namespace).Resource("configmaps").
		MaxRetries(0).Do(call).Into(&out)
	op.Return = time.Now()
	if err != nil {
		return false
	}
	op.Outcome, op.List = history.OK, map[string]history.Object{}
	for _, cm := range out.Items {
		op.List[cm.Name] = history.Object{Value: cm.Data["v"], RV: cm.ResourceVersion}
		known[cm.Name] = cm.ResourceVersion
	}
	w.rec.Record(op)
	return true
}

// finalReads reads every key once more after the faults, retrying each
// server until one answers: the reads the lost-write check compares with.
// It returns what they found: the objects that exist.
func (w *workload) finalReads(ctx context.Context) (map[string]history.Object, error) {
	known := map[string]string{}
	for attempt := 0; ; attempt++ {
		if w.list(ctx, -1, attempt%len(w.servers), known) {
			break
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("no server answered the final list: %w", ctx.Err())
		}
		time.Sleep(time.Second)
	}
	for _, key := range w.keys {
		for attempt := 0; !w.get(ctx, -1, attempt%len(w.servers), key, known); attempt++ {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("no server answered the final read of %s: %w", key, ctx.Err())
			}
			time.Sleep(time.Second)
		}
	}
	final := map[string]history.Object{}
	for _, op := range w.rec.Ops() {
		if op.Client == -1 && op.Kind == history.Get {
			if op.Outcome == history.OK {
				final[op.Key] = op.Result
			} else {
				delete(final, op.Key)
			}
		}
	}
	return final, nil
}

// longestUnavailability is the longest time between two answers from the
// API to any client, from the first call to the last answer.
func longestUnavailability(ops []history.Op) (gap time.Duration, at time.Time) {
	var answers []time.Time
	var first time.Time
	for _, op := range ops {
		if first.IsZero() || op.Call.Before(first) {
			first = op.Call
		}
		if op.Outcome != history.Unknown {
			answers = append(answers, op.Return)
		}
	}
	sort.Slice(answers, func(i, j int) bool { return answers[i].Before(answers[j]) })
	previous := first
	for _, answer := range answers {
		if d := answer.Sub(previous); d > gap {
			gap, at = d, previous
		}
		previous = answer
	}
	return gap, at
}

// failoverSummary is the clients' failover times: count, median, longest.
func (w *workload) failoverSummary() (count int, median, longest time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.failovers) == 0 {
		return 0, 0, 0
	}
	sorted := append([]time.Duration(nil), w.failovers...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	return len(sorted), sorted[len(sorted)/2], sorted[len(sorted)-1]
}
