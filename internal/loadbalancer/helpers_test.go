package loadbalancer

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitFor bounds every poll and read in these tests: long enough for a slow
// CI machine, short enough that a hang fails fast.
const waitFor = 5 * time.Second

// backend is a fake API server: a real TCP listener on 127.0.0.1 that
// greets each connection with its name and then echoes.
type backend struct {
	name string
	addr string

	mu       sync.Mutex
	listener net.Listener
	conns    []net.Conn
}

func startBackend(t *testing.T, name string) *backend {
	t.Helper()
	b := &backend{name: name, addr: "127.0.0.1:0"}
	b.listen(t)
	t.Cleanup(func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.listener != nil {
			_ = b.listener.Close()
		}
		for _, c := range b.conns {
			_ = c.Close()
		}
	})
	return b
}

// listen (re)opens the listener on the backend's address, as a restarted
// API server would.
func (b *backend) listen(t *testing.T) {
	t.Helper()
	listener, err := net.Listen("tcp", b.addr)
	if err != nil {
		t.Fatalf("backend %s: listen: %v", b.name, err)
	}
	b.mu.Lock()
	b.listener = listener
	b.addr = listener.Addr().String()
	b.mu.Unlock()
	go func() {
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns = append(b.conns, conn)
			b.mu.Unlock()
			go func() {
				_, _ = fmt.Fprintf(conn, "%s\n", b.name)
				_, _ = io.Copy(conn, conn)
				_ = conn.Close()
			}()
		}
	}()
}

// stopListening closes the listener but leaves accepted connections open,
// like a server that is gone but whose connections nobody reset: only the
// balancer can cut them.
func (b *backend) stopListening(t *testing.T) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.listener.Close(); err != nil {
		t.Fatalf("backend %s: close listener: %v", b.name, err)
	}
	b.listener = nil
}

func addrs(backends ...*backend) []string {
	var list []string
	for _, b := range backends {
		list = append(list, b.addr)
	}
	return list
}

// startLB runs a balancer over backends; tune may adjust it before Start.
func startLB(t *testing.T, backends []*backend, tune ...func(*LoadBalancer)) *LoadBalancer {
	t.Helper()
	lb, err := New("127.0.0.1:0", addrs(backends...))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for _, f := range tune {
		f(lb)
	}
	if err := lb.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := lb.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return lb
}

// connect opens a connection through lb and returns it with the name of the
// backend that answered.
func connect(t *testing.T, lb *LoadBalancer) (net.Conn, string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", lb.Address(), waitFor)
	if err != nil {
		t.Fatalf("dial balancer: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	_ = conn.SetReadDeadline(time.Now().Add(waitFor))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("read greeting through balancer: %v", err)
	}
	_ = conn.SetReadDeadline(time.Time{})
	return conn, strings.TrimSpace(line)
}

func connectTo(t *testing.T, lb *LoadBalancer, want string) net.Conn {
	t.Helper()
	conn, got := connect(t, lb)
	if got != want {
		t.Fatalf("connection reached backend %q, want %q", got, want)
	}
	return conn
}

// expectOpen checks that conn still carries data both ways.
func expectOpen(t *testing.T, conn net.Conn) {
	t.Helper()
	if _, err := conn.Write([]byte("ping\n")); err != nil {
		t.Fatalf("write: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(waitFor))
	defer func() { _ = conn.SetReadDeadline(time.Time{}) }()
	buf := make([]byte, len("ping\n"))
	if _, err := io.ReadFull(conn, buf); err != nil {
		t.Fatalf("connection should still be open, read: %v", err)
	}
	if string(buf) != "ping\n" {
		t.Fatalf("echo = %q, want %q", buf, "ping\n")
	}
}

// expectClosed checks that the balancer closed conn: a read ends in EOF or
// a reset rather than timing out.
func expectClosed(t *testing.T, conn net.Conn) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(waitFor))
	n, err := conn.Read(make([]byte, 64))
	if err == nil {
		t.Fatalf("connection should be closed, read %d bytes", n)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection should be closed, still open after %s", waitFor)
	}
}

// eventually polls cond until it holds or waitFor passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s", waitFor, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
