package e2e

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/monokube/monokube/test/harness"
)

// TestSystemdHearsReadyOnlyWhenReady starts `server --enable-worker` as
// systemd starts a Type=notify unit: with NOTIFY_SOCKET naming a datagram
// socket, here the test's. The process must send READY=1 once, and only
// when it is ready: its ready line logged and /readyz ok. The embedded
// kube-apiserver and kubelet each send their own READY=1 early when they
// see the variable; a guest under real systemd had its unit active while
// /readyz still failed.
func TestSystemdHearsReadyOnlyWhenReady(t *testing.T) {
	network := harness.NewNetwork(t)
	node := harness.NewNode(t, network, 1, "")
	socket := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	node.Env = append(os.Environ(), "NOTIFY_SOCKET="+socket)
	node.Start()

	buf := make([]byte, 256)
	_ = conn.SetReadDeadline(time.Now().Add(3 * time.Minute))
	n, _, err := conn.ReadFromUnix(buf)
	if err != nil {
		t.Fatalf("no message on NOTIFY_SOCKET: %v", err)
	}
	if first := string(buf[:n]); !strings.HasPrefix(first, "READY=1") {
		t.Fatalf("first message %q, want READY=1", first)
	}
	// Asked at once: whoever waited for READY finds the server ready.
	if !strings.Contains(node.Log(), "monokube server is ready") {
		t.Errorf("READY=1 came before the server logged it was ready")
	}
	if out, err := node.Kubectl("get", "--raw", "/readyz"); err != nil || strings.TrimSpace(out) != "ok" {
		t.Errorf("READY=1 came while /readyz is not ok: %v: %s", err, out)
	}
	// The kubelet and the API server run on: nothing else speaks.
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, _, err := conn.ReadFromUnix(buf); err == nil {
		t.Errorf("a second message on NOTIFY_SOCKET: %q", buf[:n])
	}
}
