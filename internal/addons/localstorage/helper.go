package localstorage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// helper runs the volume-helper image on a node.
type helper struct {
	client kubernetes.Interface
	image  string
}

// helperTimeout bounds one setup or teardown, image start included.
const helperTimeout = 2 * time.Minute

// run executes `volume-helper action /storage/dir` on node with base
// mounted at /storage, waits for it and removes the pod. The pod's name
// comes from its arguments, so a retry finds the earlier attempt.
func (h helper) run(ctx context.Context, node, base, action, dir string) error {
	sum := sha256.Sum256([]byte(node + "\x00" + base + "\x00" + action + "\x00" + dir))
	name := "volume-" + action + "-" + hex.EncodeToString(sum[:])[:16]
	pods := h.client.CoreV1().Pods(metav1.NamespaceSystem)
	hostDir := corev1.HostPathDirectoryOrCreate
	noToken := false
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app.kubernetes.io/name": "volume-helper"}},
		Spec: corev1.PodSpec{
			NodeName:                     node,
			RestartPolicy:                corev1.RestartPolicyNever,
			AutomountServiceAccountToken: &noToken,
			PriorityClassName:            "system-node-critical",
			// Whatever taints the node has, its volumes must be served.
			Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
			Containers: []corev1.Container{{
				Name:            "helper",
				Image:           h.image,
				ImagePullPolicy: corev1.PullIfNotPresent,
				Args:            []string{action, "/storage/" + dir},
				VolumeMounts:    []corev1.VolumeMount{{Name: "storage", MountPath: "/storage"}},
			}},
			Volumes: []corev1.Volume{{Name: "storage", VolumeSource: corev1.VolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: base, Type: &hostDir},
			}}},
		},
	}
	if _, err := pods.Create(ctx, pod, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create %s pod on %s: %w", action, node, err)
	}
	defer func() {
		// Removed even when ctx ended: a finished helper is of no use.
		cleanup, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := pods.Delete(cleanup, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			klog.ErrorS(err, "Cannot remove volume helper pod", "pod", name)
		}
	}()
	var phase corev1.PodPhase
	var message string
	waitCtx, cancel := context.WithTimeout(ctx, helperTimeout)
	defer cancel()
	err := wait.PollUntilContextCancel(waitCtx, 500*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		current, err := pods.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		phase, message = current.Status.Phase, describe(current)
		return phase == corev1.PodSucceeded || phase == corev1.PodFailed, nil
	})
	switch {
	case err != nil:
		return fmt.Errorf("volume %s on node %s: %s did not finish within %s (%s)", dir, node, action, helperTimeout, message)
	case phase == corev1.PodFailed:
		return fmt.Errorf("volume %s on node %s: %s failed: %s", dir, node, action, message)
	}
	klog.InfoS("Local volume directory ready", "action", action, "node", node, "dir", base+"/"+dir)
	return nil
}

// describe sums up why a helper pod is where it is.
func describe(pod *corev1.Pod) string {
	var parts []string
	for _, status := range pod.Status.ContainerStatuses {
		if w := status.State.Waiting; w != nil {
			parts = append(parts, w.Reason+": "+w.Message)
		}
		if t := status.State.Terminated; t != nil {
			parts = append(parts, fmt.Sprintf("exit %d: %s", t.ExitCode, strings.TrimSpace(t.Message)))
		}
	}
	if len(parts) == 0 {
		return "phase " + string(pod.Status.Phase)
	}
	return strings.Join(parts, "; ")
}
