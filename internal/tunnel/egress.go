package tunnel

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/config"
	"github.com/monokube/monokube/internal/kubeclient"
)

// Egress is the HTTP CONNECT proxy the API server's egress selector sends
// its "cluster" connections to, on a unix socket only root reaches. It
// dials each through the tunnel of the node the address belongs to, as the
// mode says, and directly when no tunnel applies (a node with no tunnel
// open here is dialed as before tunnels existed).
type Egress struct {
	Tunnels *Server
	// Mode is spec.network.egressSelectorMode (not disabled: then there is
	// no Egress).
	Mode string
	// Socket is the unix socket's path (EgressSocket).
	Socket string
	// Kubeconfig lets it follow the Node objects.
	Kubeconfig string
	// ServiceCIDR is the cluster's, for the cluster mode.
	ServiceCIDR string

	routes   *routes
	services []netip.Prefix
	listener net.Listener
	server   *http.Server
	stop     context.CancelFunc
	done     sync.WaitGroup
}

var _ component.Component = (*Egress)(nil)

func (e *Egress) Name() string { return "egress" }

func (e *Egress) Init(context.Context) error {
	e.routes = newRoutes()
	if e.Mode == config.EgressCluster {
		services, err := config.Prefixes(e.ServiceCIDR)
		if err != nil {
			return fmt.Errorf("service CIDR: %w", err)
		}
		e.services = services
	}
	if err := os.MkdirAll(filepath.Dir(e.Socket), 0o700); err != nil {
		return fmt.Errorf("egress socket dir: %w", err)
	}
	// A socket left by a process killed before it could remove it.
	if err := os.Remove(e.Socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale egress socket: %w", err)
	}
	return nil
}

func (e *Egress) Start(ctx context.Context) error {
	client, err := kubeclient.New(e.Kubeconfig)
	if err != nil {
		return err
	}
	listener, err := net.Listen("unix", e.Socket)
	if err != nil {
		return fmt.Errorf("egress socket: %w", err)
	}
	if err := os.Chmod(e.Socket, 0o600); err != nil {
		listener.Close()
		return fmt.Errorf("egress socket: %w", err)
	}
	e.listener = listener
	ctx, e.stop = context.WithCancel(ctx)

	factory := informers.NewSharedInformerFactory(client, 0)
	nodes := factory.Core().V1().Nodes().Informer()
	if _, err := nodes.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { e.routes.set(obj.(*corev1.Node)) },
		UpdateFunc: func(_, obj any) { e.routes.set(obj.(*corev1.Node)) },
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if node, ok := obj.(*corev1.Node); ok {
				e.routes.remove(node.Name)
			}
		},
	}); err != nil {
		listener.Close()
		return fmt.Errorf("follow nodes: %w", err)
	}
	factory.Start(ctx.Done())

	e.server = &http.Server{Handler: http.HandlerFunc(e.connect), ReadHeaderTimeout: 10 * time.Second}
	e.done.Add(1)
	go func() {
		defer e.done.Done()
		if err := e.server.Serve(listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			klog.ErrorS(err, "Egress proxy stopped")
		}
	}()
	e.done.Add(1)
	go func() {
		defer e.done.Done()
		<-ctx.Done()
		factory.Shutdown()
	}()
	klog.InfoS("API server egress through node tunnels", "mode", e.Mode, "socket", e.Socket)
	return nil
}

// Ready returns at once: a node whose tunnel is not up yet is dialed
// directly meanwhile.
func (e *Egress) Ready(context.Context) error { return nil }

func (e *Egress) Stop() error {
	if e.stop == nil {
		return nil
	}
	e.stop()
	err := e.server.Close()
	e.done.Wait()
	_ = os.Remove(e.Socket)
	return err
}

// connect serves one CONNECT: dial, answer 200, then copy both ways.
func (e *Egress) connect(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		http.Error(w, "only CONNECT is served here", http.StatusMethodNotAllowed)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	upstream, via, err := e.dial(ctx, r.Host)
	if err != nil {
		klog.V(2).InfoS("Egress dial failed", "address", r.Host, "via", via, "err", err)
		http.Error(w, fmt.Sprintf("dial %s via %s: %v", r.Host, via, err), http.StatusBadGateway)
		return
	}
	klog.V(4).InfoS("Egress", "address", r.Host, "via", via)
	hijacker, ok := w.(http.Hijacker)
	if !ok {
		upstream.Close()
		http.Error(w, "connection cannot be taken over", http.StatusInternalServerError)
		return
	}
	client, buffered, err := hijacker.Hijack()
	if err != nil {
		upstream.Close()
		return
	}
	// Written by hand: net/http would add headers a CONNECT answer has no
	// use for, and the API server refuses any byte after the answer.
	if _, err := client.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n")); err != nil {
		client.Close()
		upstream.Close()
		return
	}
	pipe(client, buffered, upstream)
}

// dial connects to address through the tunnel the mode picks for it, and
// says which ("direct", "node <name>", "any node").
func (e *Egress) dial(ctx context.Context, address string) (net.Conn, string, error) {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return nil, "nothing", err
	}
	if ip := net.ParseIP(host); ip != nil {
		if node := e.routes.nodeOf(ip, e.Mode != config.EgressAgent); node != "" {
			if d := e.Tunnels.dialer(node); d != nil {
				conn, err := d(ctx, "tcp", address)
				return conn, "node " + node, err
			}
		}
		if addr, ok := netip.AddrFromSlice(ip); ok && config.InPrefixes(e.services, addr) {
			if d := e.Tunnels.any(); d != nil {
				conn, err := d(ctx, "tcp", address)
				return conn, "any node", err
			}
		}
	}
	var direct net.Dialer
	conn, err := direct.DialContext(ctx, "tcp", address)
	return conn, "direct", err
}

// pipe copies between the taken-over client connection (and what it had
// already buffered) and upstream until both directions end.
func pipe(client net.Conn, buffered *bufio.ReadWriter, upstream net.Conn) {
	defer client.Close()
	defer upstream.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(upstream, buffered)
		closeWrite(upstream)
	}()
	_, _ = io.Copy(client, upstream)
	closeWrite(client)
	wg.Wait()
}

func closeWrite(conn net.Conn) {
	if c, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = c.CloseWrite()
		return
	}
	_ = conn.Close()
}
