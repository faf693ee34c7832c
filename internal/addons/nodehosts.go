package addons

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/kubeclient"
)

// nodeHostsKey is the CoreDNS ConfigMap key its hosts plugin reads, so
// node names resolve in the cluster (as k3s's NodeHosts).
const nodeHostsKey = "NodeHosts"

// NodeHosts keeps the NodeHosts entry of the CoreDNS ConfigMap equal to
// the nodes' internal addresses.
type NodeHosts struct {
	Kubeconfig string // a privileged identity on the local API server

	component.Task
}

var _ component.Component = (*NodeHosts)(nil)

func (n *NodeHosts) Name() string { return "coredns-nodehosts" }

func (n *NodeHosts) Init(context.Context) error { return nil }

func (n *NodeHosts) Start(ctx context.Context) error {
	client, err := kubeclient.New(n.Kubeconfig)
	if err != nil {
		return err
	}
	n.Go(ctx, func(ctx context.Context) error {
		factory := informers.NewSharedInformerFactory(client, 0)
		nodes := factory.Core().V1().Nodes()
		changed, err := kubeclient.Changes(nodes.Informer())
		if err != nil {
			return err
		}
		factory.Start(ctx.Done())
		defer factory.Shutdown()
		// The ConfigMap comes and goes with the add-on's stack: check it
		// now and then even when no node changed.
		ticker := time.NewTicker(10 * time.Second)
		defer ticker.Stop()
		last := ""
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-changed:
			case <-ticker.C:
			}
			if !nodes.Informer().HasSynced() {
				continue
			}
			list, err := nodes.Lister().List(labels.Everything())
			if err != nil {
				continue
			}
			hosts := render(list)
			if err := update(ctx, client, hosts); err != nil {
				klog.V(2).InfoS("NodeHosts not updated yet", "reason", err.Error())
				continue
			}
			if hosts != last {
				klog.InfoS("Updated node names in cluster DNS", "nodes", len(list))
				last = hosts
			}
		}
	})
	return nil
}

func (n *NodeHosts) Ready(context.Context) error { return nil }

func (n *NodeHosts) Stop() error { return n.Task.Stop(5 * time.Second) }

// render is one "IP name" line per node address, sorted so an unchanged
// set of nodes writes nothing.
func render(nodes []*corev1.Node) string {
	var lines []string
	for _, node := range nodes {
		for _, addr := range node.Status.Addresses {
			if addr.Type == corev1.NodeInternalIP {
				lines = append(lines, addr.Address+" "+node.Name)
			}
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n"
}

func update(ctx context.Context, client kubernetes.Interface, hosts string) error {
	configMaps := client.CoreV1().ConfigMaps(metav1.NamespaceSystem)
	cm, err := configMaps.Get(ctx, "coredns", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("ConfigMap kube-system/coredns does not exist (yet)")
	}
	if err != nil {
		return err
	}
	if cm.Data[nodeHostsKey] == hosts {
		return nil
	}
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data[nodeHostsKey] = hosts
	_, err = configMaps.Update(ctx, cm, metav1.UpdateOptions{})
	return err
}
