package scale

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// loadLabel is on every object the load makes.
const loadLabel = "scale.monokube.io/load"

// podsPerNamespace bounds a namespace's pods, as clusterloader2's load
// test spreads its Deployments over namespaces of 30 pods per node's worth.
const podsPerNamespace = 300

// deploymentSizes cycle as the load's mix: mostly small Deployments, some
// medium, a few big (clusterloader2: small 5, medium 30, big 250).
var deploymentSizes = []int{5, 5, 5, 5, 30, 5, 5, 5, 5, 30, 5, 5, 5, 5, 30, 250}

// deployment is one planned Deployment with its namespace and size.
type deployment struct {
	namespace, name string
	replicas        int32
}

// plan spreads pods over Deployments of the mix and namespaces of at most
// podsPerNamespace pods.
func plan(pods int) []deployment {
	var out []deployment
	namespace, inNamespace := 0, 0
	for i, left := 0, pods; left > 0; i++ {
		size := min(deploymentSizes[i%len(deploymentSizes)], left, podsPerNamespace)
		if inNamespace+size > podsPerNamespace {
			namespace, inNamespace = namespace+1, 0
		}
		out = append(out, deployment{namespace: fmt.Sprintf("load-%03d", namespace), name: fmt.Sprintf("d-%04d", i), replicas: int32(size)})
		inNamespace += size
		left -= size
	}
	return out
}

// pacer spaces calls at qps.
type pacer struct{ tick <-chan time.Time }

func newPacer(qps float64) (*pacer, func()) {
	ticker := time.NewTicker(time.Duration(float64(time.Second) / qps))
	return &pacer{tick: ticker.C}, ticker.Stop
}

func (p *pacer) wait(ctx context.Context) error {
	select {
	case <-p.tick:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// createLoad makes the namespaces, each with a ConfigMap and a Secret the
// pods mount, and per Deployment a Service in front of it.
func createLoad(ctx context.Context, client kubernetes.Interface, deployments []deployment, qps float64) error {
	p, stop := newPacer(qps)
	defer stop()
	made := map[string]bool{}
	labels := map[string]string{loadLabel: "true"}
	for _, d := range deployments {
		if !made[d.namespace] {
			made[d.namespace] = true
			meta := metav1.ObjectMeta{Name: d.namespace, Labels: labels}
			steps := []func() error{
				func() error {
					_, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: meta}, metav1.CreateOptions{})
					return err
				},
				func() error {
					cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "settings", Labels: labels}, Data: map[string]string{"mode": "load"}}
					_, err := client.CoreV1().ConfigMaps(d.namespace).Create(ctx, cm, metav1.CreateOptions{})
					return err
				},
				func() error {
					secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "credentials", Labels: labels}, StringData: map[string]string{"token": "load"}}
					_, err := client.CoreV1().Secrets(d.namespace).Create(ctx, secret, metav1.CreateOptions{})
					return err
				},
			}
			for _, step := range steps {
				if err := paced(ctx, p, step); err != nil {
					return fmt.Errorf("namespace %s: %w", d.namespace, err)
				}
			}
		}
		if err := paced(ctx, p, func() error { return createService(ctx, client, d) }); err != nil {
			return err
		}
		if err := paced(ctx, p, func() error {
			_, err := client.AppsV1().Deployments(d.namespace).Create(ctx, deploymentObject(d), metav1.CreateOptions{})
			return err
		}); err != nil {
			return fmt.Errorf("deployment %s/%s: %w", d.namespace, d.name, err)
		}
	}
	return nil
}

func paced(ctx context.Context, p *pacer, call func() error) error {
	if err := p.wait(ctx); err != nil {
		return err
	}
	if err := call(); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

func createService(ctx context.Context, client kubernetes.Interface, d deployment) error {
	service := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: d.name, Labels: map[string]string{loadLabel: "true"}},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": d.name},
			Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}
	_, err := client.CoreV1().Services(d.namespace).Create(ctx, service, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("service %s/%s: %w", d.namespace, d.name, err)
	}
	return nil
}

func deploymentObject(d deployment) *appsv1.Deployment {
	labels := map[string]string{"app": d.name, loadLabel: "true"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: d.name, Labels: map[string]string{loadLabel: "true"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(d.replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": d.name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					// Pod Security "restricted", as a well-made workload is.
					SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To(int64(65532)),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
					// kwok plays the pods: no image is pulled, nothing runs.
					Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10",
						SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false),
							Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
						VolumeMounts: []corev1.VolumeMount{{Name: "settings", MountPath: "/etc/settings"}, {Name: "credentials", MountPath: "/etc/credentials"}}}},
					Volumes: []corev1.Volume{
						{Name: "settings", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}}},
						{Name: "credentials", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "credentials"}}},
					},
				},
			},
		},
	}
}

// scaleLoad sets every Deployment's replicas to factor times its planned
// size (at least 1).
func scaleLoad(ctx context.Context, client kubernetes.Interface, deployments []deployment, factor float64, qps float64) error {
	p, stop := newPacer(qps)
	defer stop()
	for _, d := range deployments {
		replicas := max(int32(float64(d.replicas)*factor+0.5), 1)
		patch := fmt.Sprintf(`{"spec":{"replicas":%d}}`, replicas)
		if err := paced(ctx, p, func() error {
			_, err := client.AppsV1().Deployments(d.namespace).Patch(ctx, d.name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
			return err
		}); err != nil {
			return fmt.Errorf("scale %s/%s: %w", d.namespace, d.name, err)
		}
	}
	return nil
}

// rollLoad changes every Deployment's pod template: a rolling update.
func rollLoad(ctx context.Context, client kubernetes.Interface, deployments []deployment, revision string, qps float64) error {
	p, stop := newPacer(qps)
	defer stop()
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"scale.monokube.io/revision":%q}}}}}`, revision)
	for _, d := range deployments {
		if err := paced(ctx, p, func() error {
			_, err := client.AppsV1().Deployments(d.namespace).Patch(ctx, d.name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
			return err
		}); err != nil {
			return fmt.Errorf("roll %s/%s: %w", d.namespace, d.name, err)
		}
	}
	return nil
}

// deleteLoad deletes the load's namespaces; the namespace controller
// deletes what is in them.
func deleteLoad(ctx context.Context, client kubernetes.Interface, deployments []deployment, qps float64) error {
	p, stop := newPacer(qps)
	defer stop()
	done := map[string]bool{}
	for _, d := range deployments {
		if done[d.namespace] {
			continue
		}
		done[d.namespace] = true
		if err := paced(ctx, p, func() error {
			err := client.CoreV1().Namespaces().Delete(ctx, d.namespace, metav1.DeleteOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			return err
		}); err != nil {
			return fmt.Errorf("delete namespace %s: %w", d.namespace, err)
		}
	}
	return nil
}

// rolledOut is whether every Deployment runs its wanted replicas, all of
// the newest template.
func rolledOut(ctx context.Context, client kubernetes.Interface) (done, total int, err error) {
	list, err := client.AppsV1().Deployments(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: loadLabel + "=true"})
	if err != nil {
		return 0, 0, err
	}
	for _, d := range list.Items {
		want := ptr.Deref(d.Spec.Replicas, 1)
		s := d.Status
		if s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want && s.AvailableReplicas == want && s.Replicas == want {
			done++
		}
	}
	return done, len(list.Items), nil
}
