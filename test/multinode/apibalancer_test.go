package multinode

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/monokube/monokube/test/harness"
)

// TestWorkerRestartKeepsTheAPIReachable probes the API through a worker's
// load balancer (127.0.0.1:6444 in the worker's network namespace) ten
// times a second while the worker restarts, once stopped by SIGTERM and once
// killed: the balancer runs in a process of its own that the restarted
// worker attaches to again, so not one probe may fail. Reset then stops
// that process too.
func TestWorkerRestartKeepsTheAPIReachable(t *testing.T) {
	c := harness.NewCluster(t, "")
	c.Server.StartReady()
	worker := c.AddWorker()
	worker.StartWorker(c.Token("--expiry=1h"))
	c.WaitReady(c.All()...)

	stop := filepath.Join(t.TempDir(), "stop")
	probes := make(chan string, 1)
	go func() {
		// curl prints 000 for a connection refused or cut.
		out, _ := worker.InNode("sh", "-c", `while [ ! -e `+stop+` ]; do
  curl -sk -m 3 -o /dev/null -w '%{http_code}\n' https://127.0.0.1:6444/version
  sleep 0.1
done`)
		probes <- out
	}()
	waitReadyAgain := func(times int) {
		harness.Poll(t, 2*time.Minute, "worker ready again", func(context.Context) (bool, error) {
			return strings.Count(worker.Log(), "monokube worker is ready") == times, nil
		})
	}
	time.Sleep(2 * time.Second)
	if code, _, err := worker.Terminate(time.Minute); err != nil || code != 0 {
		t.Fatalf("worker stop: exit %d, %v", code, err)
	}
	time.Sleep(time.Second)
	worker.StartWorker()
	waitReadyAgain(2)
	worker.Kill()
	time.Sleep(time.Second)
	worker.StartWorker()
	waitReadyAgain(3)
	time.Sleep(2 * time.Second)
	if err := os.WriteFile(stop, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out := <-probes

	codes := strings.Fields(out)
	failed := 0
	for _, code := range codes {
		// Anonymous requests are refused (401): that is the API server
		// answering. 000 is a connection refused, cut or timed out.
		if code != "401" {
			failed++
		}
	}
	t.Logf("API through the worker's balancer during two worker restarts: %d probes, %d failed", len(codes), failed)
	if len(codes) < 50 || failed > 0 {
		t.Errorf("%d of %d probes failed (want at least 50 probes, none failed):\n%s", failed, len(codes), out)
	}
	if n := strings.Count(worker.Log(), "API balancer process started"); n != 1 {
		t.Errorf("the balancer process was started %d times, want once (the restarts attach to it)", n)
	}

	worker.Kill()
	if out, err := worker.InNode(worker.Bin, "reset", "--data-dir", worker.DataDir); err != nil {
		t.Fatalf("reset: %v\n%s", err, out)
	}
	if out, err := worker.InNode("sh", "-c", "curl -sk -m 3 -o /dev/null -w '%{http_code}' https://127.0.0.1:6444/version"); !strings.Contains(out, "000") {
		t.Errorf("after reset the balancer still answers: %q (%v)", out, err)
	}
}
