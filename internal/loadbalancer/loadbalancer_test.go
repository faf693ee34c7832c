package loadbalancer

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNewRejectsBadServers(t *testing.T) {
	for name, servers := range map[string][]string{
		"empty":        nil,
		"no port":      {"10.0.0.1"},
		"url":          {"https://10.0.0.1:6443"},
		"one bad":      {"10.0.0.1:6443", "10.0.0.2"},
		"empty host":   {":6443"},
		"only a blank": {" "},
	} {
		t.Run(name, func(t *testing.T) {
			if lb, err := New("127.0.0.1:0", servers); err == nil {
				_ = lb.Stop()
				t.Fatalf("New(%q) succeeded, want an error", servers)
			}
		})
	}
}

func TestAddressAndURL(t *testing.T) {
	a := startBackend(t, "a")
	lb := startLB(t, []*backend{a})
	if _, port, err := net.SplitHostPort(lb.Address()); err != nil || port == "0" {
		t.Fatalf("Address() = %q, want the bound host:port", lb.Address())
	}
	if want := "https://" + lb.Address(); lb.URL() != want {
		t.Fatalf("URL() = %q, want %q", lb.URL(), want)
	}
}

func TestForwardsToFirstServer(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	lb := startLB(t, []*backend{a, b})

	first := connectTo(t, lb, "a")
	expectOpen(t, first)
	// Clients stay together on the server that works.
	second := connectTo(t, lb, "a")
	expectOpen(t, second)
	expectOpen(t, first)
}

func TestFailsOverWhenCurrentServerStopsListening(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	lb := startLB(t, []*backend{a, b}, func(lb *LoadBalancer) {
		lb.healthInterval, lb.refusedGrace = 20*time.Millisecond, 500*time.Millisecond
	})

	onA := connectTo(t, lb, "a")
	a.stopListening(t)

	// The refused dial to a moves this connection to b...
	onB := connectTo(t, lb, "b")
	// ...while a, refusing (as a server that shuts down does), may still
	// answer on the connection it holds...
	expectOpen(t, onA)
	// ...until the grace ends: then it is cut, so its client reconnects.
	expectClosed(t, onA)
	expectOpen(t, onB)
	// b is now current: later connections go straight there.
	connectTo(t, lb, "b")
	if got := lb.Servers(); !slices.Equal(got, addrs(a, b)) {
		t.Fatalf("Servers() = %q, a failed server must stay listed: want %q", got, addrs(a, b))
	}
}

func TestHealthCheckCutsConnectionsOfDeadCurrentServer(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	lb := startLB(t, []*backend{a, b}, func(lb *LoadBalancer) { lb.healthInterval, lb.refusedGrace = 20*time.Millisecond, 0 })

	// No new connection comes to notice a's death: the probe must.
	onA := connectTo(t, lb, "a")
	a.stopListening(t)
	expectClosed(t, onA)
	connectTo(t, lb, "b")
}

func TestConnectionClosedWhenNoServerReachable(t *testing.T) {
	a := startBackend(t, "a")
	lb := startLB(t, []*backend{a})
	a.stopListening(t)

	conn, err := net.DialTimeout("tcp", lb.Address(), waitFor)
	if err != nil {
		t.Fatalf("dial balancer: %v", err)
	}
	defer func() { _ = conn.Close() }()
	expectClosed(t, conn)
}

func TestSetServersRemovingCurrentClosesItsConnections(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	lb := startLB(t, []*backend{a, b})
	onA := connectTo(t, lb, "a")

	// Reordering keeps a: its connections stay, and it stays first to try.
	lb.SetServers(addrs(b, a))
	expectOpen(t, onA)
	connectTo(t, lb, "a")

	// Removing a cuts its connections though a still listens.
	lb.SetServers(addrs(b))
	expectClosed(t, onA)
	connectTo(t, lb, "b")
	if got := lb.Servers(); !slices.Equal(got, addrs(b)) {
		t.Fatalf("Servers() = %q, want %q", got, addrs(b))
	}
}

func TestSetServersIgnoresEmptyListAndDedupes(t *testing.T) {
	a, b := startBackend(t, "a"), startBackend(t, "b")
	lb := startLB(t, []*backend{a})
	onA := connectTo(t, lb, "a")

	for _, empty := range [][]string{nil, {}, {"not-an-address"}, {""}} {
		lb.SetServers(empty)
		if got := lb.Servers(); !slices.Equal(got, addrs(a)) {
			t.Fatalf("after SetServers(%q): Servers() = %q, want %q kept", empty, got, addrs(a))
		}
	}
	expectOpen(t, onA)
	connectTo(t, lb, "a")

	lb.SetServers([]string{b.addr, a.addr, b.addr, "bad", " " + a.addr + " "})
	if got, want := lb.Servers(), addrs(b, a); !slices.Equal(got, want) {
		t.Fatalf("Servers() = %q, want %q", got, want)
	}
	expectOpen(t, onA)
}

func TestServersReturnsACopy(t *testing.T) {
	a := startBackend(t, "a")
	lb := startLB(t, []*backend{a})
	lb.Servers()[0] = "changed:1"
	if got := lb.Servers(); !slices.Equal(got, addrs(a)) {
		t.Fatalf("Servers() = %q after changing a returned slice, want %q", got, addrs(a))
	}
}

func TestUnhealthyServerReturnsToRotation(t *testing.T) {
	a, b, c := startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c")
	lb := startLB(t, []*backend{a, b, c}, func(lb *LoadBalancer) { lb.healthInterval = 20 * time.Millisecond })

	connectTo(t, lb, "a")
	a.stopListening(t)
	connectTo(t, lb, "b")
	eventually(t, "a is marked unhealthy", func() bool { return lb.isUnhealthy(a.addr) })

	a.listen(t)
	eventually(t, "the health check finds a again", func() bool { return !lb.isUnhealthy(a.addr) })

	// Still on b: a recovered server does not pull clients back.
	connectTo(t, lb, "b")
	// When b goes, a comes before c again, which it would not while
	// marked unhealthy.
	b.stopListening(t)
	connectTo(t, lb, "a")
}

func TestUnhealthyServerIsTriedLastButTried(t *testing.T) {
	a, b, c := startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c")
	// Default health interval: no probe runs during the test, so a stays
	// marked unhealthy after it listens again.
	lb := startLB(t, []*backend{a, b, c})

	connectTo(t, lb, "a")
	a.stopListening(t)
	connectTo(t, lb, "b")
	a.listen(t)

	b.stopListening(t)
	connectTo(t, lb, "c") // not a, though a comes first in the list
	c.stopListening(t)
	connectTo(t, lb, "a") // the last resort still works
}

func TestStopClosesListenerAndConnections(t *testing.T) {
	a := startBackend(t, "a")
	lb := startLB(t, []*backend{a})
	onA := connectTo(t, lb, "a")

	if err := lb.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	expectClosed(t, onA)
	if conn, err := net.DialTimeout("tcp", lb.Address(), time.Second); err == nil {
		_ = conn.Close()
		t.Fatal("balancer still accepts connections after Stop")
	}
	if err := lb.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "stopped") {
		t.Fatalf("Start after Stop = %v, want an error", err)
	}
}

func TestContextEndStops(t *testing.T) {
	a := startBackend(t, "a")
	lb, err := New("127.0.0.1:0", addrs(a))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := lb.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	onA := connectTo(t, lb, "a")
	cancel()
	expectClosed(t, onA)
	eventually(t, "the listener closes", func() bool {
		conn, err := net.DialTimeout("tcp", lb.Address(), time.Second)
		if err == nil {
			_ = conn.Close()
		}
		return err != nil
	})
}

func (lb *LoadBalancer) isUnhealthy(server string) bool {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return lb.unhealthy[server]
}
