package loadbalancer

import (
	"context"
	"slices"
	"testing"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"
)

// endpointSlice is a slice of the service, with one endpoint per address
// on a port named portName.
func endpointSlice(name, service, portName string, port int32, addresses ...string) *discoveryv1.EndpointSlice {
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name,
			Namespace: metav1.NamespaceDefault,
			Labels:    map[string]string{discoveryv1.LabelServiceName: service},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(portName), Port: ptr.To(port)}},
	}
	for _, address := range addresses {
		slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{Addresses: []string{address}})
	}
	return slice
}

func TestWatchServersFollowsEndpointSlices(t *testing.T) {
	const joinServer = "join.example:6443"
	lb, err := New("127.0.0.1:0", []string{joinServer})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = lb.Stop() })

	// Present before the watch: another service's slice, and one of ours
	// without an https port. Neither names an API server.
	client := fake.NewClientset(
		endpointSlice("other", "other", "https", 443, "10.9.9.9"),
		endpointSlice("kubernetes-http", "kubernetes", "http", 80, "10.8.8.8"),
	)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		WatchServers(ctx, client, lb)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	expect := func(what string, want ...string) {
		t.Helper()
		eventually(t, what, func() bool { return slices.Equal(lb.Servers(), want) })
	}
	slicesAPI := client.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault)

	// Nothing published yet: the join token's server stays.
	if got := lb.Servers(); !slices.Equal(got, []string{joinServer}) {
		t.Fatalf("Servers() = %q before any endpoint, want %q", got, joinServer)
	}

	slice := endpointSlice("kubernetes", "kubernetes", "https", 6443, "10.0.0.2", "10.0.0.1")
	if _, err := slicesAPI.Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create: %v", err)
	}
	expect("the published servers replace the join server", "10.0.0.1:6443", "10.0.0.2:6443")

	// A third server joins, one stops being ready.
	slice = endpointSlice("kubernetes", "kubernetes", "https", 6443, "10.0.0.1", "10.0.0.2", "10.0.0.3")
	slice.Endpoints[0].Conditions.Ready = ptr.To(false)
	if _, err := slicesAPI.Update(ctx, slice, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update: %v", err)
	}
	expect("the list follows the update", "10.0.0.2:6443", "10.0.0.3:6443")

	// Servers are the union over the service's slices, IPv6 bracketed.
	v6 := endpointSlice("kubernetes-v6", "kubernetes", "https", 6443, "fd00::1")
	v6.AddressType = discoveryv1.AddressTypeIPv6
	if _, err := slicesAPI.Create(ctx, v6, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create: %v", err)
	}
	expect("a second slice adds its servers", "10.0.0.2:6443", "10.0.0.3:6443", "[fd00::1]:6443")

	for _, name := range []string{"kubernetes", "kubernetes-v6"} {
		if err := slicesAPI.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatalf("delete %s: %v", name, err)
		}
	}
	expect("with nothing published the join server is back", joinServer)
}
