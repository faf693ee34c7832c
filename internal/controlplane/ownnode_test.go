package controlplane

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/request"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

func nodeRequest(name, asUser string, groups ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/api/v1/nodes/"+name, nil)
	ctx := request.WithRequestInfo(r.Context(), &request.RequestInfo{
		IsResourceRequest: true, Verb: "get", APIVersion: "v1", Resource: "nodes", Name: name,
	})
	ctx = request.WithUser(ctx, &user.DefaultInfo{Name: asUser, Groups: groups})
	return r.WithContext(ctx)
}

func TestOwnNodeReadWaitsForTheNodeToRegister(t *testing.T) {
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	gate := ownNodeGate{nodes: corelisters.NewNodeLister(indexer)}
	served := make(chan time.Time, 1)
	handler := gate.wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served <- time.Now() }))

	registered := time.Now().Add(300 * time.Millisecond)
	go func() {
		time.Sleep(time.Until(registered))
		_ = indexer.Add(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}})
	}()
	handler.ServeHTTP(httptest.NewRecorder(), nodeRequest("n1", "system:node:n1", "system:nodes"))
	if at := <-served; at.Before(registered) {
		t.Errorf("the kubelet's read of its own Node was served %s before the Node existed", registered.Sub(at))
	}

	// Anyone else, or another node's Node, is served at once.
	for _, r := range []*http.Request{
		nodeRequest("n2", "system:node:n1", "system:nodes"),
		nodeRequest("n2", "admin", "system:masters"),
	} {
		began := time.Now()
		handler.ServeHTTP(httptest.NewRecorder(), r)
		if took := (<-served).Sub(began); took > 100*time.Millisecond {
			t.Errorf("%s waited %s", r.URL, took)
		}
	}
}
