package node

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/component"
)

// Registration creates the node's Node object, as the node itself, before
// the kubelet starts; the kubelet then finds it "previously registered"
// and adds its default labels, addresses and status, exactly as after a
// restart. Why: right after it starts, the kubelet's CSI plugin initialises
// the node's CSINode, which needs the Node, and gives up on that attempt
// after some 0.3 s; under load the kubelet's own registration is slower,
// so a fresh node logged "Failed to initialize CSINode ... not found" and
// stayed NotReady until a retry. With the Node in place the first attempt
// works. The object carries what the kubelet would register with (labels,
// taints, the attach/detach annotation), since the kubelet does not add
// those to a Node that exists.
type Registration struct {
	// Client is the node's own identity: the Node authorizer and
	// NodeRestriction allow it exactly what the kubelet's registration may.
	Client   kubernetes.Interface
	Identity Identity
}

var _ component.Component = (*Registration)(nil)

func (r *Registration) Name() string { return "node-registration" }

func (r *Registration) Init(context.Context) error { return nil }

// Start creates the Node unless it exists. A server that cannot be reached
// (a worker starting while it is away) is no reason to wait: the kubelet
// registers by itself once it can.
func (r *Registration) Start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:   r.Identity.Name,
			Labels: r.Identity.Labels,
			// The kubelet's own registration sets this when the
			// controller-manager attaches volumes (the default).
			Annotations: map[string]string{"volumes.kubernetes.io/controller-managed-attach-detach": "true"},
		},
		Spec: corev1.NodeSpec{Taints: r.Identity.Taints},
	}
	_, err := r.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	switch {
	case err == nil:
		klog.InfoS("Registered the Node ahead of the kubelet", "node", r.Identity.Name)
	case apierrors.IsAlreadyExists(err):
	case apierrors.IsForbidden(err) || apierrors.IsInvalid(err):
		return fmt.Errorf("register node %s: %w", r.Identity.Name, err)
	default:
		klog.InfoS("Could not register the Node ahead of the kubelet; it registers by itself", "node", r.Identity.Name, "reason", err.Error())
	}
	return nil
}

func (r *Registration) Ready(context.Context) error { return nil }

func (r *Registration) Stop() error { return nil }
