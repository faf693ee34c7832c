package carotation

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/monokube/monokube/internal/kubeclient"
)

// waitFor waits until every server runs state's generation, then
// publishes it to the nodes and waits for every Ready node.
func (r *Rotation) waitFor(ctx context.Context, state State) error {
	r.Log("Waiting for every server to restart with it (one at a time)")
	if err := r.poll(ctx, "servers", func(client kubernetes.Interface) ([]string, error) {
		caKey, err := os.ReadFile(r.Files.CAKey())
		if err != nil {
			return nil, err
		}
		current, _, err := Load(ctx, client, caKey)
		if err != nil {
			return nil, err
		}
		return Lagging(current, state.Generation, time.Now()), nil
	}); err != nil {
		return err
	}
	bundle := corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: BundleConfigMap, Namespace: metav1.NamespaceSystem},
		Data: map[string]string{dataGeneration: fmt.Sprint(state.Generation), dataStage: state.Stage,
			"ca.crt": string(state.Trust())},
	}
	if err := retry(ctx, r, func(client kubernetes.Interface) error { return apply(ctx, client, &bundle) }); err != nil {
		return err
	}
	r.Log("Every server runs stage %s; waiting for every Ready node to restart with it", state.Stage)
	return r.poll(ctx, "nodes", func(client kubernetes.Interface) ([]string, error) {
		nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		lagging, down := LaggingNodes(nodes.Items, state.Generation)
		for _, name := range down {
			r.Log("Node %s is not Ready: it is not waited for; if it returns after --finish, join it again with a new token", name)
		}
		return lagging, nil
	})
}

// poll calls lagging every second until it lists nothing, logging who is
// awaited every 10 s.
func (r *Rotation) poll(ctx context.Context, what string, lagging func(kubernetes.Interface) ([]string, error)) error {
	ctx, cancel := context.WithTimeout(ctx, r.Wait)
	defer cancel()
	var waiting []string
	var lastErr error
	lastLog := time.Now()
	for {
		client, err := kubeclient.New(r.Kubeconfig, kubeclient.WithTimeout(5*time.Second), kubeclient.WithFilesReadNow())
		if err == nil {
			waiting, err = lagging(client)
		}
		lastErr = err
		if err == nil && len(waiting) == 0 {
			return nil
		}
		if time.Since(lastLog) > 10*time.Second {
			lastLog = time.Now()
			if err != nil {
				r.Log("  waiting for the API server (%v)", err)
			} else {
				r.Log("  waiting for %s: %s", what, strings.Join(waiting, ", "))
			}
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return fmt.Errorf("waiting for the %s: %w (run the command again to go on)", what, lastErr)
			}
			return fmt.Errorf("%s %s did not apply the stage within %s (see `monokube certs status`; run the command again to go on)", what, strings.Join(waiting, ", "), r.Wait)
		case <-time.After(time.Second):
		}
	}
}

// Lagging lists the servers that have not reported generation: every
// server with a live record (a heartbeat within recordExpires), and the
// one whose restart turn it is.
func Lagging(state State, generation int64, now time.Time) []string {
	var lagging []string
	for _, name := range sortedKeys(state.Servers) {
		record := state.Servers[name]
		if now.Sub(record.Time) > recordExpires && name != state.Restarting {
			continue // stopped: it applies the stage when it starts
		}
		if record.Generation < generation || name == state.Restarting {
			lagging = append(lagging, name)
		}
	}
	if len(state.Servers) == 0 {
		lagging = append(lagging, "(no server has reported yet)")
	}
	return lagging
}

// LaggingNodes lists the Ready nodes not annotated with generation, and
// the nodes that are not Ready.
func LaggingNodes(nodes []corev1.Node, generation int64) (lagging, down []string) {
	for _, node := range nodes {
		if !kubeclient.NodeReady(&node) {
			down = append(down, node.Name)
			continue
		}
		if applied(node) < generation {
			lagging = append(lagging, node.Name)
		}
	}
	return lagging, down
}

func applied(node corev1.Node) int64 {
	var g int64
	fmt.Sscan(node.Annotations[NodeAnnotation], &g)
	return g
}

// retry runs call with a fresh client until it succeeds or the wait ends:
// the API server this command talks to restarts during a rotation.
func retry(ctx context.Context, r *Rotation, call func(kubernetes.Interface) error) error {
	ctx, cancel := context.WithTimeout(ctx, r.Wait)
	defer cancel()
	for {
		client, err := kubeclient.New(r.Kubeconfig, kubeclient.WithTimeout(5*time.Second), kubeclient.WithFilesReadNow())
		if err == nil {
			if err = call(client); err == nil {
				return nil
			}
		}
		if ctx.Err() != nil || !transient(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second):
		}
	}
}

// transient errors are those of a server that is restarting, or of a
// write that raced another: the client cannot reach or trust the server
// yet, or the API server asks to try again.
func transient(err error) bool {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return apierrors.IsConflict(err) || apierrors.IsServiceUnavailable(err) || apierrors.IsTimeout(err) ||
			apierrors.IsServerTimeout(err) || apierrors.IsTooManyRequests(err) || apierrors.IsInternalError(err)
	}
	var urlErr *url.Error
	return errors.As(err, &urlErr)
}

// apply creates or replaces cm, whatever it held.
func apply(ctx context.Context, client kubernetes.Interface, cm *corev1.ConfigMap) error {
	cm = cm.DeepCopy()
	if current, err := client.CoreV1().ConfigMaps(cm.Namespace).Get(ctx, cm.Name, metav1.GetOptions{}); err == nil {
		cm.ResourceVersion = current.ResourceVersion
	}
	_, err := kubeclient.WriteConfigMap(ctx, client, cm)
	return err
}
