package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/kubectl/pkg/drain"
)

// fleetRecord is the ConfigMap in kube-system that remembers the hosts the
// last apply put in the cluster, so the next one finds those removed from
// the file (and how to reach them to reset them).
const fleetRecord = "monokube-fleet"

// connectAPI fetches the admin kubeconfig from a server, points it at an
// address this machine reaches, writes it to a.Kubeconfig and connects.
func (a *Applier) connectAPI(ctx context.Context, first Host) error {
	url := fmt.Sprintf("https://%s:%d", first.Address, a.File.Spec.Config.API.Port)
	if a.ServerURL != nil {
		url = a.ServerURL(first)
	}
	raw, err := AdminKubeconfig(ctx, a.machines[first.Name], url)
	if err != nil {
		return &StepError{first.Name, "fetch the admin kubeconfig", err}
	}
	if err := os.MkdirAll(filepath.Dir(a.Kubeconfig), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(a.Kubeconfig, raw, 0o600); err != nil {
		return fmt.Errorf("write the admin kubeconfig: %w", err)
	}
	rest, err := clientcmd.RESTConfigFromKubeConfig(raw)
	if err != nil {
		return err
	}
	rest.QPS, rest.Burst = 50, 100
	a.client, err = kubernetes.NewForConfig(rest)
	return err
}

// waitNodeReady waits for the host's Node to be Ready, as reported after
// since (a restarted node's kubelet reports at once; until then the Node
// still shows the old process's status).
func (a *Applier) waitNodeReady(ctx context.Context, h Host, since time.Time) error {
	began := time.Now()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		node, err := a.client.CoreV1().Nodes().Get(ctx, h.Name, metav1.GetOptions{})
		if err == nil && nodeReadySince(node, since) {
			a.step(h, "node Ready (%s)", time.Since(began).Round(time.Millisecond))
			return nil
		}
		if time.Now().After(deadline) {
			return &StepError{h.Name, "wait for its Node to be Ready", fmt.Errorf("not Ready after 5 minutes (last: %v)", err)}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func nodeReadySince(node *corev1.Node, since time.Time) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue && !c.LastHeartbeatTime.Time.Before(since.Truncate(time.Second))
		}
	}
	return false
}

// drainer cordons and drains through the Eviction API, so
// PodDisruptionBudgets hold; nothing is forced.
func (a *Applier) drainer(ctx context.Context) *drain.Helper {
	return &drain.Helper{
		Ctx:                 ctx,
		Client:              a.client,
		IgnoreAllDaemonSets: true,
		DeleteEmptyDirData:  true,
		GracePeriodSeconds:  -1,
		Timeout:             a.DrainTimeout,
		Out:                 nopWriter{},
		ErrOut:              nopWriter{},
	}
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

// drain cordons and drains a node once the servers' controllers lead; a
// drain that cannot finish names the PodDisruptionBudgets that hold it.
func (a *Applier) drain(ctx context.Context, h Host) error {
	node, err := a.client.CoreV1().Nodes().Get(ctx, h.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return &StepError{h.Name, "cordon", err}
	}
	if err := a.waitControllersLead(ctx, h); err != nil {
		return err
	}
	helper := a.drainer(ctx)
	if err := drain.RunCordonOrUncordon(helper, node, true); err != nil {
		return &StepError{h.Name, "cordon", err}
	}
	began := time.Now()
	if err := drain.RunNodeDrain(helper, h.Name); err != nil {
		return &StepError{h.Name, "drain", fmt.Errorf("%w%s (the node stays cordoned; relax the budget or free the pods, then run apply again)", err, a.blockingBudgets(ctx, h))}
	}
	a.step(h, "cordoned and drained (%s)", time.Since(began).Round(time.Millisecond))
	return nil
}

// blockingBudgets names the PodDisruptionBudgets that allow no disruption
// of a pod still on the node.
func (a *Applier) blockingBudgets(ctx context.Context, h Host) string {
	pods, err := a.client.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + h.Name})
	if err != nil {
		return ""
	}
	var names []string
	for _, pod := range pods.Items {
		budgets, err := a.client.PolicyV1().PodDisruptionBudgets(pod.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			continue
		}
		for _, b := range budgets.Items {
			selector, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
			if err != nil || !selector.Matches(labels.Set(pod.Labels)) || b.Status.DisruptionsAllowed > 0 {
				continue
			}
			name := fmt.Sprintf("PodDisruptionBudget %s/%s (allows %d disruptions, pod %s)", b.Namespace, b.Name, b.Status.DisruptionsAllowed, pod.Name)
			if !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
	}
	if len(names) == 0 {
		return ""
	}
	return "; held by " + strings.Join(names, ", ")
}

func (a *Applier) uncordon(ctx context.Context, h Host) error {
	node, err := a.client.CoreV1().Nodes().Get(ctx, h.Name, metav1.GetOptions{})
	if err != nil {
		return &StepError{h.Name, "uncordon", err}
	}
	if err := drain.RunCordonOrUncordon(a.drainer(ctx), node, false); err != nil {
		return &StepError{h.Name, "uncordon", err}
	}
	return nil
}

// recorded are the hosts the last apply left in the cluster.
func (a *Applier) recorded(ctx context.Context) ([]Host, error) {
	cm, err := a.client.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, fleetRecord, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the cluster's host record: %w", err)
	}
	var hosts []Host
	if err := json.Unmarshal([]byte(cm.Data["hosts.json"]), &hosts); err != nil {
		return nil, fmt.Errorf("the cluster's host record: %w", err)
	}
	return hosts, nil
}

// record remembers the file's hosts.
func (a *Applier) record(ctx context.Context) error {
	raw, err := json.Marshal(a.File.Spec.Hosts)
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: fleetRecord, Namespace: metav1.NamespaceSystem},
		Data:       map[string]string{"hosts.json": string(raw)},
	}
	configMaps := a.client.CoreV1().ConfigMaps(metav1.NamespaceSystem)
	current, err := configMaps.Get(ctx, fleetRecord, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = configMaps.Create(ctx, cm, metav1.CreateOptions{})
	case err == nil:
		if current.Data["hosts.json"] == string(raw) {
			return nil
		}
		cm.ResourceVersion = current.ResourceVersion
		_, err = configMaps.Update(ctx, cm, metav1.UpdateOptions{})
	}
	if err != nil {
		return fmt.Errorf("record the cluster's hosts: %w", err)
	}
	return nil
}

// removeGone takes out the hosts the last apply recorded and the file no
// longer names: cordon, drain, delete the Node (and the etcd member), then
// stop the service and reset the host.
func (a *Applier) removeGone(ctx context.Context, first Host) error {
	previous, err := a.recorded(ctx)
	if err != nil {
		return err
	}
	for _, h := range previous {
		if slices.ContainsFunc(a.File.Spec.Hosts, func(k Host) bool { return k.Name == h.Name }) {
			continue
		}
		if err := a.remove(ctx, first, h); err != nil {
			return err
		}
	}
	return nil
}

func (a *Applier) remove(ctx context.Context, first Host, h Host) error {
	began := time.Now()
	a.step(h, "removing: no longer in the file")
	if h.IsNode() {
		if err := a.drain(ctx, h); err != nil {
			return err
		}
	}
	m, err := a.Dial(ctx, h)
	if err != nil {
		return &StepError{h.Name, "connect", err}
	}
	defer m.Close()
	if err := a.service(h).uninstall(ctx, m, roleOf(h)); err != nil {
		return &StepError{h.Name, "stop and uninstall the service", err}
	}
	if h.IsServer() && a.File.Spec.Config.Storage.Embedded() {
		if _, err := a.machines[first.Name].Run(ctx, remoteBinary+" etcd member-remove "+shellQuote(h.Name)); err != nil {
			return &StepError{h.Name, "remove its etcd member", err}
		}
	}
	err = a.client.CoreV1().Nodes().Delete(ctx, h.Name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return &StepError{h.Name, "delete its Node", err}
	}
	if _, err := m.Run(ctx, remoteBinary+" reset --data-dir "+remoteDataDir); err != nil {
		return &StepError{h.Name, "reset", err}
	}
	a.step(h, "removed: Node deleted, host reset (%s)", time.Since(began).Round(time.Millisecond))
	a.did(h, "removed", time.Since(began))
	return nil
}
