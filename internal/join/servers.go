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

// APIServers are the URLs a token names: this server's first, then every
// other API server the cluster publishes in the kubernetes Service's
// endpoints, so a node can join while this one is down.
func APIServers(ctx context.Context, client kubernetes.Interface, self string) []string {
	servers := []string{self}
	list, err := client.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=kubernetes"})
	if err != nil {
		klog.InfoS("Could not list the API servers; the token names only this one", "err", err)
		return servers
	}
	for _, slice := range list.Items {
		port := 0
		for _, p := range slice.Ports {
			if p.Port != nil && (p.Name == nil || *p.Name == "https") {
				port = int(*p.Port)
			}
		}
		if port == 0 {
			continue
		}
		for _, endpoint := range slice.Endpoints {
			for _, address := range endpoint.Addresses {
				servers = appendNew(servers, "https://"+net.JoinHostPort(address, strconv.Itoa(port)))
			}
		}
	}
	return servers
}

func appendNew(list []string, item string) []string {
	if slices.Contains(list, item) {
		return list
	}
	return append(list, item)
}
