package carotation

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// Bundle is what nodes apply: the stage and the CAs they trust.
type Bundle struct {
	Generation int64
	Stage      string
	CA         []byte
}

// Signer is the CA that signs in the bundle's stage (the first).
func (b Bundle) Signer() []byte { return firstCert(b.CA) }

// ReadBundle reads what nodes apply; found is false before any rotation.
func ReadBundle(ctx context.Context, client kubernetes.Interface) (bundle Bundle, found bool, err error) {
	cm, err := client.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, BundleConfigMap, metav1.GetOptions{})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return bundle, false, nil
		}
		return bundle, false, fmt.Errorf("read %s/%s: %w", metav1.NamespaceSystem, BundleConfigMap, err)
	}
	bundle.Stage, bundle.CA = cm.Data[dataStage], []byte(cm.Data["ca.crt"])
	if bundle.Generation, err = strconv.ParseInt(cm.Data[dataGeneration], 10, 64); err != nil {
		return bundle, false, fmt.Errorf("%s: generation: %w", BundleConfigMap, err)
	}
	return bundle, true, nil
}

// Annotate records on a Node the generation its node applied. A node may
// change its own Node object.
func Annotate(ctx context.Context, client kubernetes.Interface, node string, generation int64) error {
	current, err := client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("read node %s: %w", node, err)
	}
	value := strconv.FormatInt(generation, 10)
	if current.Annotations[NodeAnnotation] == value {
		return nil
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, NodeAnnotation, value)
	if _, err := client.CoreV1().Nodes().Patch(ctx, node, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("annotate node %s: %w", node, err)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
