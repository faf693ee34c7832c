package kubeclient

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// WriteConfigMap stores cm, a ConfigMap that servers agree through: it
// creates it when cm has no resource version, and otherwise updates it
// only if nobody changed it since it was read (a conflict error asks the
// caller to read again).
func WriteConfigMap(ctx context.Context, client kubernetes.Interface, cm *corev1.ConfigMap) (*corev1.ConfigMap, error) {
	configMaps := client.CoreV1().ConfigMaps(cm.Namespace)
	var saved *corev1.ConfigMap
	var err error
	if cm.ResourceVersion == "" {
		saved, err = configMaps.Create(ctx, cm, metav1.CreateOptions{})
	} else {
		saved, err = configMaps.Update(ctx, cm, metav1.UpdateOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("write %s/%s: %w", cm.Namespace, cm.Name, err)
	}
	return saved, nil
}
