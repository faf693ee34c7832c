package manifests

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	events "k8s.io/client-go/tools/record"

	"github.com/monokube/monokube/internal/kubeclient"
)

// Each stack's record is a ConfigMap in kube-system: what was applied from
// which files, and the types it used, so a stack removed while the server
// was down is still pruned, and so users see each stack's state
// (`kubectl -n kube-system get cm -l monokube.io/stack-record`) and its
// Events.
const (
	recordNamespace = metav1.NamespaceSystem
	recordPrefix    = "monokube-stack-"
	recordLabel     = "monokube.io/stack-record"
)

type record struct {
	stack    string
	files    []string
	checksum string
	kinds    []schema.GroupVersionKind
	applied  bool
	message  string
}

type records struct {
	client   kubernetes.Interface
	recorder events.EventRecorder
	shutdown func()

	mu     sync.Mutex
	byName map[string]*record
}

func newRecords(client kubernetes.Interface) *records {
	recorder, shutdown := kubeclient.EventRecorder(client, fieldManager)
	return &records{client: client, recorder: recorder, shutdown: shutdown, byName: map[string]*record{}}
}

// load reads the records, waiting for the API server to answer.
func (r *records) load(ctx context.Context) error {
	var list *corev1.ConfigMapList
	err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		var err error
		list, err = r.client.CoreV1().ConfigMaps(recordNamespace).List(ctx, metav1.ListOptions{LabelSelector: recordLabel})
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("read manifest stack records: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, cm := range list.Items {
		stack := strings.TrimPrefix(cm.Name, recordPrefix)
		r.byName[stack] = &record{
			stack:    stack,
			files:    strings.Fields(cm.Data["files"]),
			checksum: cm.Data["checksum"],
			kinds:    parseKinds(cm.Data["kinds"]),
			applied:  cm.Data["state"] == "applied",
			message:  cm.Data["message"],
		}
	}
	return nil
}

func (r *records) get(stack string) *record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byName[stack]
}

func (r *records) names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var names []string
	for name := range r.byName {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// put stores a stack's record and emits an Event about it.
func (r *records) put(ctx context.Context, rec *record) error {
	state := "failed"
	if rec.applied {
		state = "applied"
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name: recordPrefix + rec.stack, Namespace: recordNamespace,
			// Not StackLabel: pruning the stack must not find its own record.
			Labels: map[string]string{recordLabel: rec.stack},
		},
		Data: map[string]string{
			"files":    strings.Join(rec.files, "\n"),
			"checksum": rec.checksum,
			"kinds":    kindNames(rec.kinds),
			"state":    state,
			"message":  rec.message,
		},
	}
	stored, err := r.client.CoreV1().ConfigMaps(recordNamespace).Update(ctx, cm, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		stored, err = r.client.CoreV1().ConfigMaps(recordNamespace).Create(ctx, cm, metav1.CreateOptions{})
	}
	if err != nil {
		return fmt.Errorf("store record of stack %s: %w", rec.stack, err)
	}
	r.mu.Lock()
	r.byName[rec.stack] = rec
	r.mu.Unlock()
	kind, reason := eventType(rec.applied)
	r.recorder.Event(stored, kind, reason, rec.message)
	return nil
}

func (r *records) delete(ctx context.Context, stack string) error {
	err := r.client.CoreV1().ConfigMaps(recordNamespace).Delete(ctx, recordPrefix+stack, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete record of stack %s: %w", stack, err)
	}
	r.mu.Lock()
	delete(r.byName, stack)
	r.mu.Unlock()
	return nil
}
