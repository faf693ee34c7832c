package tunnel

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rancher/remotedialer"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/monokube/monokube/internal/config"
)

// users authenticates a request by its "As" header, standing in for the
// API server's client-certificate authenticator.
var users = authenticator.RequestFunc(func(r *http.Request) (*authenticator.Response, bool, error) {
	switch name := r.Header.Get("As"); {
	case name == "":
		return nil, false, nil
	case strings.HasPrefix(name, "system:node:"):
		return &authenticator.Response{User: &user.DefaultInfo{Name: name, Groups: []string{user.NodesGroup, user.AllAuthenticated}}}, true, nil
	default:
		return &authenticator.Response{User: &user.DefaultInfo{Name: name, Groups: []string{user.SystemPrivilegedGroup}}}, true, nil
	}
})

func TestOnlyANodeOpensATunnelAndOnlyForItself(t *testing.T) {
	for _, try := range []struct {
		as, claim  string
		wantNode   string
		wantStatus int
		wantErr    string
	}{
		{as: "system:node:a", claim: "a", wantNode: "a"},
		{as: "system:node:a", wantNode: "a"},
		{as: "system:node:a", claim: "b", wantStatus: http.StatusForbidden, wantErr: `node "a" may not open a tunnel for node "b"`},
		{as: "admin", claim: "a", wantStatus: http.StatusForbidden, wantErr: `only a node may open a tunnel; "admin" is not a node`},
		{claim: "a", wantStatus: http.StatusUnauthorized, wantErr: "needs a node's client credentials"},
	} {
		r := httptest.NewRequest(http.MethodGet, ConnectPath, nil)
		r.Header.Set("As", try.as)
		r.Header.Set(NodeHeader, try.claim)
		node, status, err := authorize(r, users)
		if node != try.wantNode || status != try.wantStatus || (err == nil) != (try.wantErr == "") || (err != nil && !strings.Contains(err.Error(), try.wantErr)) {
			t.Errorf("as %q claiming %q: got %q %d %v, want %q %d %q", try.as, try.claim, node, status, err, try.wantNode, try.wantStatus, try.wantErr)
		}
	}
}

func TestRoutesFollowNodes(t *testing.T) {
	r := newRoutes()
	r.set(node("a", "192.0.2.1", "10.42.0.0/24"))
	r.set(node("b", "192.0.2.2", "10.42.1.0/24"))
	for _, try := range []struct {
		ip       string
		withPods bool
		want     string
	}{
		{"192.0.2.1", false, "a"},
		{"10.42.1.7", true, "b"},
		{"10.42.1.7", false, ""},
		{"10.43.0.1", true, ""},
	} {
		if got := r.nodeOf(net.ParseIP(try.ip), try.withPods); got != try.want {
			t.Errorf("nodeOf(%s, pods %v) = %q, want %q", try.ip, try.withPods, got, try.want)
		}
	}
	// A node that moves keeps no route to its old address.
	r.set(node("a", "192.0.2.9", "10.42.0.0/24"))
	if got := r.nodeOf(net.ParseIP("192.0.2.1"), true); got != "" {
		t.Errorf("old address still routed to %q", got)
	}
	r.remove("b")
	if got := r.nodeOf(net.ParseIP("10.42.1.7"), true); got != "" {
		t.Errorf("a removed node's pods still routed to %q", got)
	}
}

func node(name, ip, podCIDR string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.NodeSpec{PodCIDRs: []string{podCIDR}},
		Status:     corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}},
	}
}

// TestConnectThroughATunnel runs the whole path the API server's egress
// takes: a CONNECT on the egress socket, routed by the Node's address to
// the node's tunnel, dialed on the node's side.
func TestConnectThroughATunnel(t *testing.T) {
	tunnels := NewServer()
	api := httptest.NewServer(tunnels.Handler(http.NotFoundHandler(), users))
	defer api.Close()

	// What the node reaches: an echo server. The node here is this test,
	// so its address is loopback, which only the test's authorizer allows.
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			conn, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { defer conn.Close(); _, _ = io.Copy(conn, conn) }()
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	allowed := func(proto, address string) bool { return address == echo.Addr().String() }
	headers := http.Header{"As": {"system:node:n1"}, NodeHeader: {"n1"}}
	go func() {
		_ = remotedialer.ConnectToProxy(ctx, "ws"+strings.TrimPrefix(api.URL, "http")+ConnectPath, headers, allowed, nil, nil)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !tunnels.sessions.HasSession("n1") {
		if time.Now().After(deadline) {
			t.Fatal("the tunnel never opened")
		}
		time.Sleep(20 * time.Millisecond)
	}

	egress := &Egress{Tunnels: tunnels, Mode: config.EgressPod, routes: newRoutes()}
	egress.routes.set(node("n1", "127.0.0.1", "10.42.0.0/24"))
	socket := filepath.Join(t.TempDir(), "egress.sock")
	listener, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	proxy := &http.Server{Handler: http.HandlerFunc(egress.connect)}
	go func() { _ = proxy.Serve(listener) }()
	defer proxy.Close()

	conn, err := net.Dial("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// As the API server's egress dialer does.
	if _, err := io.WriteString(conn, "CONNECT "+echo.Addr().String()+" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	reader := bufio.NewReader(conn)
	resp, err := http.ReadResponse(reader, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	if reader.Buffered() > 0 {
		t.Fatalf("%d bytes after the CONNECT answer; the API server refuses that", reader.Buffered())
	}
	if _, err := io.WriteString(conn, "through the tunnel\n"); err != nil {
		t.Fatal(err)
	}
	line, err := reader.ReadString('\n')
	if err != nil || line != "through the tunnel\n" {
		t.Fatalf("echo through the tunnel: %q %v", line, err)
	}

	// An address the node refuses to dial: the connection ends at once.
	refused, via, err := egress.dial(ctx, "127.0.0.1:1")
	if err == nil {
		_ = refused.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = refused.Read(make([]byte, 1))
		refused.Close()
	}
	if err == nil || errors.Is(err, os.ErrDeadlineExceeded) || via != "node n1" {
		t.Errorf("a dial the node refuses: via %s, err %v", via, err)
	}
	// An address no node has is dialed directly.
	if conn, via, err := egress.dial(ctx, "127.0.0.2:1"); via != "direct" {
		t.Errorf("an address of no node went via %s (%v)", via, err)
	} else if err == nil {
		conn.Close()
	}
}

func TestAgentDialsOnlyWhatTheModeAllows(t *testing.T) {
	own := ""
	addrs, _ := net.InterfaceAddrs()
	for _, addr := range addrs {
		if ipnet, ok := addr.(*net.IPNet); ok && !ipnet.IP.IsLoopback() && ipnet.IP.To4() != nil {
			own = ipnet.IP.String()
		}
	}
	if own == "" {
		t.Skip("this machine has no non-loopback IPv4 address")
	}
	pods := func(context.Context) ([]string, error) { return []string{"10.42.3.0/24"}, nil }
	for _, try := range []struct {
		mode, address string
		want          bool
	}{
		{config.EgressAgent, own + ":10250", true},
		{config.EgressAgent, "10.42.3.9:443", false},
		{config.EgressPod, "10.42.3.9:443", true},
		{config.EgressPod, "10.42.4.9:443", false},
		{config.EgressPod, "10.43.0.10:53", false},
		{config.EgressCluster, "10.43.0.10:53", true},
		{config.EgressCluster, "127.0.0.1:10248", false},
	} {
		a := &Agent{Mode: try.mode, ServiceCIDR: "10.43.0.0/16", podCIDRs: podCIDRs{get: pods}}
		if err := a.Init(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := a.allowed("tcp", try.address); got != try.want {
			t.Errorf("mode %s, dial %s: allowed %v, want %v", try.mode, try.address, got, try.want)
		}
	}
}
