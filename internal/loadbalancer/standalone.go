package loadbalancer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

// Standalone runs the balancer in a process of its own, beside the worker
// rather than inside it, so that the worker can restart (an upgrade, a
// crash, `systemctl restart`) while clients on the node keep reaching the
// API through it: the kubelet's containers, a user's kubectl, hostNetwork
// pods. A newer program takes over the listening socket from an older one
// (handoff) instead of closing and reopening it, so there is no instant at
// which the port refuses connections.
type Standalone struct {
	// Socket is the control socket (see control.go).
	Socket string
	// PIDFile records this process for `monokube reset`.
	PIDFile string
	// Listen is the address to listen on when no older process hands one over.
	Listen string
	// Servers are the API servers to start with.
	Servers []string
	// Executable and Version identify this program to the worker, which
	// replaces a balancer that is not its own.
	Executable, Version string
	// Linger is how long the process stays with no worker attached: long
	// enough for any restart, short enough that a stopped worker leaves
	// nothing running for long.
	Linger time.Duration
	// DrainTimeout bounds how long connections accepted before a handoff may
	// go on through this process.
	DrainTimeout time.Duration

	lb *LoadBalancer
	// handedOff is closed once a successor has the socket.
	handedOff chan struct{}

	mu       sync.Mutex
	attached int
	// idle fires Linger after the last worker detached.
	idle *time.Timer
}

// Run serves until ctx ends, a successor takes over, or no worker attached
// for Linger.
func (s *Standalone) Run(ctx context.Context) error {
	listener, servers, predecessor, err := s.takeOrListen()
	if err != nil {
		return err
	}
	if len(s.Servers) > 0 {
		servers = s.Servers
	}
	if s.lb, err = NewFromListener(listener, servers); err != nil {
		_ = listener.Close()
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := s.lb.Start(ctx); err != nil {
		return err
	}
	// The predecessor closed its control socket before handing over, so the
	// path is free; a stale file from a killed process is removed.
	_ = os.Remove(s.Socket)
	control, err := net.ListenUnix("unix", &net.UnixAddr{Name: s.Socket, Net: "unix"})
	if err != nil {
		_ = s.lb.Stop()
		return fmt.Errorf("API balancer control socket %s: %w", s.Socket, err)
	}
	if err := os.Chmod(s.Socket, 0o600); err != nil {
		_ = control.Close()
		_ = s.lb.Stop()
		return err
	}
	if s.PIDFile != "" {
		if err := os.WriteFile(s.PIDFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
			klog.ErrorS(err, "API balancer: cannot record its PID; monokube reset will not find it", "file", s.PIDFile)
		}
	}
	klog.InfoS("API balancer process serving", "address", s.lb.Address(), "servers", s.lb.Servers(), "tookOverFrom", predecessor, "version", s.Version)

	s.handedOff = make(chan struct{})
	s.idle = time.AfterFunc(s.Linger, func() {
		klog.InfoS("API balancer: no worker attached; exiting", "linger", s.Linger)
		cancel()
	})
	stopAccepting := context.AfterFunc(ctx, func() { _ = control.Close() })
	defer stopAccepting()

	go s.acceptControl(ctx, control, cancel)
	select {
	case <-ctx.Done():
		return s.lb.Stop()
	case <-s.handedOff:
		// The successor accepts on the same socket now; what this process
		// accepted before goes on until it ends or the drain time is up.
		return s.lb.Drain(s.DrainTimeout)
	}
}

// takeOrListen asks a running balancer for its socket, or listens anew when
// none answers.
func (s *Standalone) takeOrListen() (net.Listener, []string, int, error) {
	if conn, err := dialControl(s.Socket); err == nil {
		defer conn.Close()
		rep, file, err := conn.call(request{Op: "handoff"})
		if err != nil {
			return nil, nil, 0, fmt.Errorf("API balancer: take over from the running one: %w", err)
		}
		if file == nil {
			return nil, nil, 0, errors.New("API balancer: the running one sent no socket")
		}
		defer file.Close()
		listener, err := net.FileListener(file)
		if err != nil {
			return nil, nil, 0, fmt.Errorf("API balancer: socket handed over: %w", err)
		}
		return listener, rep.Servers, rep.PID, nil
	}
	listenConfig := net.ListenConfig{KeepAliveConfig: keepAlive}
	listener, err := listenConfig.Listen(context.Background(), "tcp", s.Listen)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("API load balancer: listen on %s: %w", s.Listen, err)
	}
	return listener, nil, 0, nil
}

func (s *Standalone) acceptControl(ctx context.Context, control *net.UnixListener, stop context.CancelFunc) {
	for {
		conn, err := control.AcceptUnix()
		if err != nil {
			return
		}
		go s.serveControl(ctx, newControlConn(conn), control, stop)
	}
}

// serveControl answers one connection's requests until it closes.
func (s *Standalone) serveControl(ctx context.Context, conn *controlConn, control *net.UnixListener, stop context.CancelFunc) {
	defer conn.Close()
	attached := false
	defer func() {
		if attached {
			s.detach()
		}
	}()
	for {
		req, err := conn.readRequest()
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				klog.V(2).InfoS("API balancer control connection ended", "err", err)
			}
			return
		}
		switch req.Op {
		case "hello":
			_ = conn.send(s.status())
		case "attach":
			if !attached {
				attached = true
				s.attach()
			}
			_ = conn.send(s.status())
		case "servers":
			s.lb.SetServers(req.Servers)
			_ = conn.send(s.status())
		case "handoff":
			s.handOff(conn, control)
			return
		case "stop":
			klog.InfoS("API balancer: asked to stop")
			_ = conn.send(s.status())
			stop()
			return
		default:
			_ = conn.send(reply{Error: fmt.Sprintf("unknown request %q", req.Op)})
		}
	}
}

// handOff gives a successor the listening socket. The control socket is
// closed (and its path removed) first, so that the successor can listen on
// the path and nobody attaches here any more.
func (s *Standalone) handOff(conn *controlConn, control *net.UnixListener) {
	file, err := s.lb.ListenerFile()
	if err != nil {
		_ = conn.send(reply{Error: err.Error()})
		return
	}
	defer file.Close()
	_ = control.Close()
	if err := conn.sendWithFile(s.status(), file); err != nil {
		// The successor has nothing; keep serving as if never asked. The
		// control socket is gone, so the worker starts another successor.
		klog.ErrorS(err, "API balancer: handoff failed")
		return
	}
	s.idle.Stop()
	klog.InfoS("API balancer: handed the socket over; draining", "drainTimeout", s.DrainTimeout)
	close(s.handedOff)
}

func (s *Standalone) status() reply {
	return reply{PID: os.Getpid(), Executable: s.Executable, Version: s.Version, Address: s.lb.Address(), Servers: s.lb.Servers()}
}

func (s *Standalone) attach() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attached++
	s.idle.Stop()
}

func (s *Standalone) detach() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attached--
	if s.attached == 0 {
		klog.InfoS("API balancer: the worker detached; waiting for it to come back", "linger", s.Linger)
		s.idle.Reset(s.Linger)
	}
}
