package loadbalancer

import (
	"context"
	"net"
	"slices"
	"strconv"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/kubeclient"
)

// The API servers publish themselves as the endpoints of the `kubernetes`
// Service, each under the port named "https".
const (
	apiServiceNamespace = metav1.NamespaceDefault
	apiServiceName      = "kubernetes"
	apiPortName         = "https"
)

// WatchServers keeps lb's list equal to the API servers the cluster publishes: the
// addresses of the `kubernetes` EndpointSlice(s) in namespace `default`
// (label kubernetes.io/service-name=kubernetes), port named "https", as host:port. It
// runs until ctx ends; errors are logged and retried (by the informer's
// reflector, with backoff). While the cluster publishes no server, lb goes
// back to the servers given to New, which came from the join token.
func WatchServers(ctx context.Context, client kubernetes.Interface, lb *LoadBalancer) {
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithNamespace(apiServiceNamespace),
		informers.WithTweakListOptions(func(options *metav1.ListOptions) {
			options.LabelSelector = labels.SelectorFromSet(labels.Set{discoveryv1.LabelServiceName: apiServiceName}).String()
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
			servers := serversFrom(published)
			if len(servers) == 0 {
				servers = lb.fallback
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

// serversFrom is the sorted host:port of every ready endpoint on the https
// port. Sorting keeps the list, and so the balancer's logs, steady when the
// slices are rewritten in another order.
func serversFrom(endpointSlices []*discoveryv1.EndpointSlice) []string {
	var servers []string
	for _, slice := range endpointSlices {
		port, ok := httpsPort(slice)
		if !ok {
			continue
		}
		for _, endpoint := range slice.Endpoints {
			// A nil condition means ready, per the EndpointSlice API.
			if ready := endpoint.Conditions.Ready; ready != nil && !*ready {
				continue
			}
			for _, address := range endpoint.Addresses {
				servers = append(servers, net.JoinHostPort(address, port))
			}
		}
	}
	slices.Sort(servers)
	return slices.Compact(servers)
}

func httpsPort(slice *discoveryv1.EndpointSlice) (string, bool) {
	for _, port := range slice.Ports {
		if port.Name != nil && *port.Name == apiPortName && port.Port != nil {
			return strconv.Itoa(int(*port.Port)), true
		}
	}
	return "", false
}
