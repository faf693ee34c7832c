package loadbalancer

import (
	"bufio"
	"context"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// runStandalone runs a balancer process's loop in this test process and
// waits until its control socket answers.
func runStandalone(t *testing.T, s *Standalone) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	eventually(t, "control socket answers", func() bool {
		conn, err := dialControl(s.Socket)
		if err != nil {
			return false
		}
		defer conn.Close()
		rep, _, err := conn.call(request{Op: "hello"})
		return err == nil && rep.Version == s.Version
	})
	return done
}

func TestHandoffNeverRefusesAConnection(t *testing.T) {
	a := startBackend(t, "a")
	socket := filepath.Join(t.TempDir(), "api-balancer.sock")
	old := &Standalone{Socket: socket, Listen: "127.0.0.1:0", Servers: addrs(a), Version: "old", Linger: time.Minute, DrainTimeout: time.Second}
	oldDone := runStandalone(t, old)
	address := old.lb.Address()

	// Clients connect without pause through the handoff.
	var ok, failed atomic.Int64
	stop := make(chan struct{})
	clientsDone := make(chan struct{})
	go func() {
		defer close(clientsDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			conn, err := net.DialTimeout("tcp", address, waitFor)
			if err != nil {
				failed.Add(1)
				continue
			}
			_ = conn.SetReadDeadline(time.Now().Add(waitFor))
			if line, err := bufio.NewReader(conn).ReadString('\n'); err != nil || line != "a\n" {
				failed.Add(1)
			} else {
				ok.Add(1)
			}
			_ = conn.Close()
		}
	}()

	time.Sleep(200 * time.Millisecond)
	successor := &Standalone{Socket: socket, Listen: "127.0.0.1:1", Version: "new", Linger: time.Minute, DrainTimeout: time.Second}
	newDone := runStandalone(t, successor)
	select {
	case err := <-oldDone:
		if err != nil {
			t.Fatalf("old process: %v", err)
		}
	case <-time.After(2 * waitFor):
		t.Fatal("the old process did not end after handing over")
	}
	before := ok.Load()
	eventually(t, "connections through the successor", func() bool { return ok.Load() > before+10 })
	close(stop)
	<-clientsDone

	if got := successor.lb.Address(); got != address {
		t.Errorf("successor listens on %s, want the socket handed over (%s), not its own --listen", got, address)
	}
	if successor.lb.Servers()[0] != a.addr {
		t.Errorf("successor servers %q, want the predecessor's %q", successor.lb.Servers(), a.addr)
	}
	t.Logf("%d connections through the handoff, %d failed", ok.Load()+failed.Load(), failed.Load())
	if failed.Load() != 0 {
		t.Errorf("%d of %d connections failed through the handoff, want 0", failed.Load(), failed.Load()+ok.Load())
	}
	// (StopProcess would also wait for the process to end: this one.)
	control, err := dialControl(socket)
	if err != nil {
		t.Fatal(err)
	}
	defer control.Close()
	if _, _, err := control.call(request{Op: "stop"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-newDone:
	case <-time.After(waitFor):
		t.Fatal("stop request did not end the successor")
	}
}

func TestLingersOnlyWhileNoWorkerIsAttached(t *testing.T) {
	a := startBackend(t, "a")
	socket := filepath.Join(t.TempDir(), "api-balancer.sock")
	s := &Standalone{Socket: socket, Listen: "127.0.0.1:0", Servers: addrs(a), Version: "v", Linger: 300 * time.Millisecond, DrainTimeout: time.Second}
	done := runStandalone(t, s)

	worker, err := dialControl(socket)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := worker.call(request{Op: "attach"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
		t.Fatal("exited while a worker was attached")
	case <-time.After(time.Second):
	}
	_ = worker.Close()
	select {
	case <-done:
	case <-time.After(waitFor):
		t.Fatal("still running well after the worker detached and the linger time passed")
	}
}
