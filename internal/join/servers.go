package join

import (
	"context"
	"net"
	"slices"
	"strconv"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// APIServerSelector picks the EndpointSlices of the kubernetes Service in
// the default namespace: every API server of the cluster.
const APIServerSelector = discoveryv1.LabelServiceName + "=kubernetes"

// APIServers are the URLs a token names: this server's first, then every
// other API server the cluster publishes, so a node can join while this
// one is down.
func APIServers(ctx context.Context, client kubernetes.Interface, self string) []string {
	servers := []string{self}
	list, err := client.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{LabelSelector: APIServerSelector})
	if err != nil {
		klog.InfoS("Could not list the API servers; the token names only this one", "err", err)
		return servers
	}
	var published []*discoveryv1.EndpointSlice
	for i := range list.Items {
		published = append(published, &list.Items[i])
	}
	for _, address := range APIServerAddresses(published) {
		if url := "https://" + address; !slices.Contains(servers, url) {
			servers = append(servers, url)
		}
	}
	return servers
}

// APIServerAddresses is the sorted host:port of every ready endpoint on
// the https port of the kubernetes EndpointSlices. Sorting keeps the list
// (and the logs of those who follow it) steady when the slices are
// rewritten in another order.
func APIServerAddresses(endpointSlices []*discoveryv1.EndpointSlice) []string {
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
		if port.Name != nil && *port.Name == "https" && port.Port != nil {
			return strconv.Itoa(int(*port.Port)), true
		}
	}
	return "", false
}
