package controlplane

import (
	"context"
	"net/http"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/endpoints/request"
	corelisters "k8s.io/client-go/listers/core/v1"
)

// ownNodeWait bounds how long a kubelet's read of its own Node waits for
// the Node to be registered.
const ownNodeWait = 10 * time.Second

// ownNodeGate makes a kubelet's GET of its own Node wait until the Node
// exists, for ownNodeWait at most. The kubelet starts its CSI plugin, which
// reads its Node, before it registers that Node; upstream retries that read
// for about 0.3 s before it logs "Failed to initialize CSINode" and backs
// off, and on a loaded machine registration takes longer (seen in 2 of 50
// starts with two CPU hogs). Waiting here turns the race into ordering: the
// read answers as soon as the Node is created. Nothing else changes: any
// other request, and a Node that never comes, are served as before.
type ownNodeGate struct {
	nodes corelisters.NodeLister
}

func (g ownNodeGate) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if name, ok := ownNodeRead(r); ok {
			g.waitFor(r.Context(), name)
		}
		next.ServeHTTP(w, r)
	})
}

// ownNodeRead returns the node name when r is a node identity (NodeRestriction's
// system:node:<name> in system:nodes) getting its own Node.
func ownNodeRead(r *http.Request) (string, bool) {
	info, ok := request.RequestInfoFrom(r.Context())
	if !ok || !info.IsResourceRequest || info.Verb != "get" || info.APIGroup != "" ||
		info.Resource != "nodes" || info.Subresource != "" || info.Name == "" {
		return "", false
	}
	user, ok := request.UserFrom(r.Context())
	if !ok || user.GetName() != "system:node:"+info.Name || !slices.Contains(user.GetGroups(), "system:nodes") {
		return "", false
	}
	return info.Name, true
}

func (g ownNodeGate) waitFor(ctx context.Context, name string) {
	_ = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, ownNodeWait, true, func(context.Context) (bool, error) {
		_, err := g.nodes.Get(name)
		return err == nil, nil
	})
}
