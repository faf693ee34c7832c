package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	corev1 "k8s.io/api/core/v1"

	"github.com/monokube/monokube/test/harness"
)

type tunnelReport struct {
	ExecTunnel          durations `json:"kubectl_exec_round_trip_tunnel"`
	ExecDirect          durations `json:"kubectl_exec_round_trip_direct"`
	PortForwardTunnelMB float64   `json:"port_forward_mb_per_s_tunnel"`
	PortForwardDirectMB float64   `json:"port_forward_mb_per_s_direct"`
	ReconnectMS         float64   `json:"tunnel_back_after_server_ready_ms"`
	ServerRSSPer10MiB   float64   `json:"server_rss_mib_per_10_tunnels"`
}

// TestTunnelNumbers compares what the API server does on a worker through
// the worker's tunnel (egressSelectorMode pod) with the same dialed
// directly (disabled), on a server that is not a node and one worker both
// can reach: kubectl exec round trips (MONOKUBE_BENCH_RUNS, default 20) and
// port-forward throughput (a 64 MiB file); then how soon after a restarted
// server is ready the worker's tunnel carries kubectl logs again, and the
// server's RSS per 10 more tunnels (opened with the worker's credentials).
func TestTunnelNumbers(t *testing.T) {
	if envInt("MONOKUBE_BENCH", 0) == 0 {
		t.Skip("set MONOKUBE_BENCH=1 (or run `make bench`)")
	}
	runs := envInt("MONOKUBE_BENCH_RUNS", 20)
	c := harness.NewCluster(t, "")
	c.Server.StartServer()
	c.Server.WaitReady(3 * time.Minute)
	worker := c.AddWorker()
	worker.StartWorker(c.Token("--expiry=1h"))
	c.WaitReady(worker)
	c.Server.Apply(`apiVersion: v1
kind: Pod
metadata: {name: bench, namespace: default}
spec:
  containers:
  - name: main
    image: ` + harness.BusyboxImage + `
    command: [sh, -c, 'mkdir -p /www; dd if=/dev/zero of=/www/big bs=1M count=64; echo ready; httpd -f -p 8080 -h /www']
`)
	harness.WaitPhase(t, c.Client(), "default", "bench", corev1.PodRunning)
	var report tunnelReport
	measure := func() (durations, float64) {
		harness.Poll(t, time.Minute, "kubectl logs", func(context.Context) (bool, error) {
			out, err := c.Server.Kubectl("logs", "bench")
			return err == nil && strings.Contains(out, "ready"), nil
		})
		var samples []time.Duration
		for range runs {
			began := time.Now()
			c.Server.MustKubectl("exec", "bench", "--", "true")
			samples = append(samples, time.Since(began))
		}
		return summarize(samples), portForwardMBps(t, c.Server)
	}
	report.ExecTunnel, report.PortForwardTunnelMB = measure()
	report.ServerRSSPer10MiB = rssPer10Tunnels(t, c, worker)

	c.Server.Kill()
	c.Server.StartServer()
	c.Server.WaitReady(3 * time.Minute)
	began := time.Now()
	harness.Poll(t, time.Minute, "logs through the tunnel again", func(context.Context) (bool, error) {
		_, err := c.Server.Kubectl("logs", "bench", "--request-timeout=5s")
		return err == nil, nil
	})
	report.ReconnectMS = float64(time.Since(began).Milliseconds())

	c.Server.Kill()
	c.Server.StartServer("--egress-selector-mode", "disabled")
	c.Server.WaitReady(3 * time.Minute)
	report.ExecDirect, report.PortForwardDirectMB = measure()
	out, _ := json.MarshalIndent(report, "", "  ")
	fmt.Println(string(out))
}

// portForwardMBps fetches the pod's 64 MiB file through kubectl
// port-forward and returns MB/s.
func portForwardMBps(t *testing.T, s *harness.Node) float64 {
	url := s.PortForward("pod/bench", 8080) + "/big"
	began := time.Now()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET through port-forward: %v", err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != 64<<20 {
		t.Fatalf("read %d bytes through port-forward: %v", n, err)
	}
	return float64(n) / 1e6 / time.Since(began).Seconds()
}

// rssPer10Tunnels opens 10 more tunnels with the worker's node credentials
// (the server keeps each as a session) and returns the server's RSS growth.
func rssPer10Tunnels(t *testing.T, c *harness.Cluster, worker *harness.Node) float64 {
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(filepath.Join(c.Server.DataDir, "pki", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(ca)
	pem := filepath.Join(worker.DataDir, "kubelet", "pki", "kubelet-client-current.pem")
	cert, err := tls.LoadX509KeyPair(pem, pem)
	if err != nil {
		t.Fatal(err)
	}
	dialer := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}, HandshakeTimeout: 10 * time.Second}
	time.Sleep(5 * time.Second)
	before := rssMiB(t, c.Server.PID())
	var conns []*websocket.Conn
	for range 10 {
		conn, _, err := dialer.Dial("wss://"+net.JoinHostPort(c.Server.IP, "6443")+"/v1-monokube/connect", http.Header{"X-Monokube-Node": {worker.Name}})
		if err != nil {
			t.Fatalf("open a tunnel: %v", err)
		}
		conns = append(conns, conn)
	}
	time.Sleep(5 * time.Second)
	after := rssMiB(t, c.Server.PID())
	for _, conn := range conns {
		conn.Close()
	}
	return after - before
}
