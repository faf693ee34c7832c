// Package tunnel carries the API server's connections into the cluster over
// connections the nodes open to it: a node behind NAT, or a server that is
// not a node, still reaches kubelets and pods. Each node keeps a websocket
// to every server on the API port (rancher/remotedialer, as k3s); the API
// server's egress selector sends its "cluster" connections to a local
// HTTP CONNECT proxy (Egress) that dials through the right node's tunnel.
package tunnel

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/rancher/remotedialer"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/klog/v2"
)

// ConnectPath is where a node opens its tunnel, on the API server's port:
// no port to open besides the one every node already reaches.
const ConnectPath = "/v1-monokube/connect"

// NodeHeader names the node a tunnel is for. It must be the node whose
// credentials open it; the server takes the name from the credentials and
// refuses a request that claims another.
const NodeHeader = "X-Monokube-Node"

// Server holds the tunnels the nodes opened to this API server.
type Server struct {
	sessions *remotedialer.Server
}

type nodeKey struct{}

// NewServer returns a Server with no tunnel yet.
func NewServer() *Server {
	// The handler has authenticated the request by the time remotedialer
	// asks: the node's name is in its context.
	authorized := func(req *http.Request) (string, bool, error) {
		name, ok := req.Context().Value(nodeKey{}).(string)
		return name, ok, nil
	}
	return &Server{sessions: remotedialer.New(authorized, remotedialer.DefaultErrorWriter)}
}

// Handler serves ConnectPath and passes every other request to next, the
// API server's whole handler chain. It sits outside that chain because a
// tunnel is a hijacked connection that lives as long as the node: the
// chain's timeouts and request limits must not apply to it. authn is the
// API server's own authenticator, so a node proves who it is exactly as
// for any API request (its client certificate).
func (s *Server) Handler(next http.Handler, authn authenticator.Request) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != ConnectPath {
			next.ServeHTTP(w, r)
			return
		}
		node, status, err := authorize(r, authn)
		if err != nil {
			klog.InfoS("Tunnel refused", "remote", r.RemoteAddr, "reason", err)
			http.Error(w, err.Error(), status)
			return
		}
		klog.InfoS("Tunnel opened", "node", node, "remote", r.RemoteAddr)
		s.sessions.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), nodeKey{}, node)))
		klog.InfoS("Tunnel closed", "node", node, "remote", r.RemoteAddr)
	})
}

// authorize returns the node the request's credentials belong to, or the
// HTTP status and reason to refuse it with.
func authorize(r *http.Request, authn authenticator.Request) (string, int, error) {
	resp, ok, err := authn.AuthenticateRequest(r)
	if err != nil || !ok {
		return "", http.StatusUnauthorized, fmt.Errorf("a tunnel needs a node's client credentials: %v", errOrNone(err))
	}
	name, isNode := nodeName(resp.User)
	if !isNode {
		return "", http.StatusForbidden, fmt.Errorf("only a node may open a tunnel; %q is not a node", resp.User.GetName())
	}
	if claimed := r.Header.Get(NodeHeader); claimed != "" && claimed != name {
		return "", http.StatusForbidden, fmt.Errorf("node %q may not open a tunnel for node %q", name, claimed)
	}
	return name, 0, nil
}

// nodeName is the node a user is, by the Node authorizer's rule: in group
// system:nodes and named system:node:<name>.
func nodeName(u user.Info) (string, bool) {
	name, found := strings.CutPrefix(u.GetName(), "system:node:")
	return name, found && name != "" && slices.Contains(u.GetGroups(), user.NodesGroup)
}

func errOrNone(err error) string {
	if err == nil {
		return "none presented"
	}
	return err.Error()
}

// dialer returns a dial function through node's tunnel, or nil if the node
// has none open here.
func (s *Server) dialer(node string) remotedialer.Dialer {
	if node == "" || !s.sessions.HasSession(node) {
		return nil
	}
	return s.sessions.Dialer(node)
}

// any returns the dialer of some node with a tunnel open, for addresses
// every node reaches (Service IPs); nil if none.
func (s *Server) any() remotedialer.Dialer {
	for _, node := range s.sessions.ListClients() {
		if d := s.dialer(node); d != nil {
			return d
		}
	}
	return nil
}

// Nodes lists the nodes with a tunnel open to this server.
func (s *Server) Nodes() []string { return s.sessions.ListClients() }
