package loadbalancer

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/join"
	"github.com/monokube/monokube/internal/kubeclient"
)

// ServerList is a balancer whose servers WatchServers keeps: a LoadBalancer
// in this process, or the worker's balancer process.
type ServerList interface {
	SetServers(servers []string)
	// Fallback is the list to use while the cluster publishes none.
	Fallback() []string
}

// WatchServers keeps lb's list equal to the API servers the cluster publishes: the
// addresses of the `kubernetes` EndpointSlice(s) in namespace `default`
// (label kubernetes.io/service-name=kubernetes), port named "https", as host:port. It
// runs until ctx ends; errors are logged and retried (by the informer's
// reflector, with backoff). While the cluster publishes no server, lb goes
// back to the servers given to New, which came from the join token.
func WatchServers(ctx context.Context, client kubernetes.Interface, lb ServerList) {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithNamespace(metav1.NamespaceDefault),
		informers.WithTweakListOptions(func(options *metav1.ListOptions) {
			options.LabelSelector = join.APIServerSelector
		}))
	endpointSlices := factory.Discovery().V1().EndpointSlices()
	informer := endpointSlices.Informer()
	changed, err := kubeclient.Changes(informer)
	if err != nil {
		klog.ErrorS(err, "API load balancer: cannot watch the API server endpoints; keeping the current servers")
		return
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	// Before the first full list a partial view could drop live servers.
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		return
	}
	for {
		published, err := endpointSlices.Lister().List(labels.Everything())
		if err != nil {
			klog.ErrorS(err, "API load balancer: list cached API server endpoints")
		} else {
			servers := join.APIServerAddresses(published)
			if len(servers) == 0 {
				servers = lb.Fallback()
			}
			lb.SetServers(servers)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}
