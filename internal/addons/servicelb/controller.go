package servicelb

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/kubeclient"
)

// Controller is the component that keeps LoadBalancer Services' status
// in step with the nodes that serve them.
type Controller struct {
	Kubeconfig string // a privileged identity on the local API server

	component.Task
	client   kubernetes.Interface
	recorder record.EventRecorder
	stopRec  func()
	// reported remembers the conflict each Service was last told about,
	// so a conflict is one Event, not one per resync.
	reported map[string]string
}

var _ component.Component = (*Controller)(nil)

func (c *Controller) Name() string { return "servicelb" }

func (c *Controller) Init(context.Context) error { return nil }

func (c *Controller) Start(ctx context.Context) error {
	var err error
	c.client, err = kubeclient.New(c.Kubeconfig)
	if err != nil {
		return err
	}
	c.recorder, c.stopRec = kubeclient.EventRecorder(c.client, "servicelb")
	c.reported = map[string]string{}
	c.Go(ctx, c.run)
	return nil
}

func (c *Controller) Ready(context.Context) error { return nil }

func (c *Controller) Stop() error {
	err := c.Task.Stop(5 * time.Second)
	if c.stopRec != nil {
		c.stopRec()
	}
	return err
}

func (c *Controller) run(ctx context.Context) error {
	factory := informers.NewSharedInformerFactory(c.client, 0)
	services := factory.Core().V1().Services()
	nodes := factory.Core().V1().Nodes()
	endpoints := factory.Discovery().V1().EndpointSlices()
	changed, err := kubeclient.Changes(services.Informer(), nodes.Informer(), endpoints.Informer())
	if err != nil {
		return err
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), services.Informer().HasSynced, nodes.Informer().HasSynced, endpoints.Informer().HasSynced) {
		return nil
	}
	klog.InfoS("LoadBalancer Services get the addresses of their nodes", "limitLabel", EnableLabel)
	// A failed status write is retried on the next change or after a while.
	retry := time.NewTicker(30 * time.Second)
	defer retry.Stop()
	for {
		svcList, _ := services.Lister().List(labels.Everything())
		nodeList, _ := nodes.Lister().List(labels.Everything())
		byService := func(svc *corev1.Service) map[string]bool {
			list, _ := endpoints.Lister().EndpointSlices(svc.Namespace).List(labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: svc.Name}))
			return readyEndpointNodes(list)
		}
		decisions := assign(svcList, nodeList, byService)
		for _, svc := range svcList {
			if d, ok := decisions[svc.Namespace+"/"+svc.Name]; ok {
				c.apply(ctx, svc, d)
			}
		}
		for key := range c.reported {
			if _, ok := decisions[key]; !ok {
				delete(c.reported, key)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-retry.C:
		}
	}
}

// apply writes one Service's status and reports a conflict once.
func (c *Controller) apply(ctx context.Context, svc *corev1.Service, d decision) {
	key := svc.Namespace + "/" + svc.Name
	if d.conflict != "" && c.reported[key] != d.conflict {
		c.recorder.Event(svc, corev1.EventTypeWarning, "PortConflict", d.conflict+"; this Service stays pending until the port is free")
		klog.InfoS("LoadBalancer Service pending", "service", key, "reason", d.conflict)
	}
	c.reported[key] = d.conflict
	if sameIngress(svc.Status.LoadBalancer.Ingress, d.ingress) {
		return
	}
	updated := svc.DeepCopy()
	updated.Status.LoadBalancer.Ingress = d.ingress
	if _, err := c.client.CoreV1().Services(svc.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{}); err != nil {
		if !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			klog.ErrorS(err, "Cannot update LoadBalancer status", "service", key)
		}
		return
	}
	var ips []string
	for _, in := range d.ingress {
		ips = append(ips, in.IP)
	}
	if d.conflict == "" {
		c.recorder.Eventf(svc, corev1.EventTypeNormal, "UpdatedLoadBalancer", "ingress: %v", ips)
	}
	klog.InfoS("Updated LoadBalancer status", "service", key, "ingress", ips)
}
