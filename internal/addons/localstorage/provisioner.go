// Package localstorage provisions the local-path StorageClass: a volume is
// a directory on the node where its first pod is scheduled
// (WaitForFirstConsumer), bound to that node. The provisioning controller
// is upstream's (sig-storage-lib-external-provisioner) running in the
// server process; only making and removing the directory happens on the
// node, in a short pod of our own volume-helper image, since the server
// cannot reach another node's disk.
package localstorage

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/monokube/monokube/internal/node"
)

const (
	// ProvisionerName is the StorageClass's provisioner.
	ProvisionerName = "monokube.io/local-path"
	// PathAnnotation on a Node names its storage directory; each node
	// writes its own (it depends on that node's data dir). The same
	// annotation on a PV records the directory its volume is in.
	PathAnnotation = node.StoragePathAnnotation
	// nodeAnnotation on a PV names the node its directory is on.
	nodeAnnotation = "storage.monokube.io/node"
)

// provisioner makes and removes volume directories with helper pods.
type provisioner struct {
	client kubernetes.Interface
	// defaultPath is used for nodes that have not announced theirs.
	defaultPath string
	helper      helper
}

var _ controller.Provisioner = (*provisioner)(nil)

// Provision makes the directory on the selected node and returns its PV.
func (p *provisioner) Provision(ctx context.Context, opts controller.ProvisionOptions) (*corev1.PersistentVolume, controller.ProvisioningState, error) {
	if opts.SelectedNodeName == "" {
		return nil, controller.ProvisioningFinished, errors.New("local-path volumes live on one node: the StorageClass needs volumeBindingMode WaitForFirstConsumer")
	}
	if opts.PVC.Spec.VolumeMode != nil && *opts.PVC.Spec.VolumeMode == corev1.PersistentVolumeBlock {
		return nil, controller.ProvisioningFinished, errors.New("local-path volumes are directories; block volumes are not supported")
	}
	selected, err := p.client.CoreV1().Nodes().Get(ctx, opts.SelectedNodeName, metav1.GetOptions{})
	if err != nil {
		return nil, controller.ProvisioningInBackground, fmt.Errorf("get node %s: %w", opts.SelectedNodeName, err)
	}
	base := p.basePath(selected)
	name := fmt.Sprintf("%s_%s_%s", opts.PVName, opts.PVC.Namespace, opts.PVC.Name)
	if err := p.helper.run(ctx, selected.Name, base, "setup", name); err != nil {
		return nil, controller.ProvisioningInBackground, err
	}
	hostname := selected.Labels[corev1.LabelHostname]
	if hostname == "" {
		hostname = selected.Name
	}
	reclaim := corev1.PersistentVolumeReclaimDelete
	if opts.StorageClass.ReclaimPolicy != nil {
		reclaim = *opts.StorageClass.ReclaimPolicy
	}
	directory := corev1.HostPathDirectory
	return &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{
			Name:        opts.PVName,
			Annotations: map[string]string{nodeAnnotation: selected.Name, PathAnnotation: base},
		},
		Spec: corev1.PersistentVolumeSpec{
			PersistentVolumeReclaimPolicy: reclaim,
			AccessModes:                   opts.PVC.Spec.AccessModes,
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: opts.PVC.Spec.Resources.Requests[corev1.ResourceStorage]},
			MountOptions:                  opts.StorageClass.MountOptions,
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: filepath.Join(base, name), Type: &directory},
			},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
					Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{hostname},
				}}}},
			}},
		},
	}, controller.ProvisioningFinished, nil
}

// Delete removes the directory on its node. A node that is gone took its
// directory with it.
func (p *provisioner) Delete(ctx context.Context, pv *corev1.PersistentVolume) error {
	nodeName, base := pv.Annotations[nodeAnnotation], pv.Annotations[PathAnnotation]
	if pv.Spec.HostPath == nil || nodeName == "" || base == "" {
		return fmt.Errorf("PV %s was not made by %s (no host path or node annotation)", pv.Name, ProvisionerName)
	}
	if filepath.Dir(pv.Spec.HostPath.Path) != base {
		return fmt.Errorf("PV %s: path %s is not directly below %s; not removing it", pv.Name, pv.Spec.HostPath.Path, base)
	}
	if _, err := p.client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("get node %s: %w", nodeName, err)
	}
	return p.helper.run(ctx, nodeName, base, "teardown", filepath.Base(pv.Spec.HostPath.Path))
}

// basePath is the node's announced storage directory, or the default.
func (p *provisioner) basePath(n *corev1.Node) string {
	if path := n.Annotations[PathAnnotation]; filepath.IsAbs(path) {
		return filepath.Clean(path)
	}
	return p.defaultPath
}
