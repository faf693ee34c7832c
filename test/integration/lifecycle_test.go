package integration

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/monokube/monokube/test/harness"
)

// TestKillNineKeepsAcknowledgedWrites kills the server right after kubectl
// confirmed a batch of writes and checks every one survives the restart.
func TestKillNineKeepsAcknowledgedWrites(t *testing.T) {
	server := harness.NewServer(t, "")
	server.StartReady()
	server.MustKubectl("create", "namespace", "durable")
	const count = 30
	for i := range count {
		server.MustKubectl("-n", "durable", "create", "configmap", fmt.Sprintf("cm-%02d", i), fmt.Sprintf("--from-literal=n=%d", i))
	}
	server.MustKubectl("-n", "durable", "create", "deployment", "keep", "--image=busybox:stable")
	// The last write is acknowledged; kill without any chance to flush.
	server.MustKubectl("-n", "durable", "label", "configmap", "cm-29", "last=yes")
	server.Kill()

	server.StartReady()
	client := server.Client()
	ctx := context.Background()
	cms, err := client.CoreV1().ConfigMaps("durable").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, cm := range cms.Items {
		found[cm.Name] = true
	}
	for i := range count {
		if name := fmt.Sprintf("cm-%02d", i); !found[name] {
			t.Errorf("configmap %s lost after kill -9", name)
		}
	}
	last, err := client.CoreV1().ConfigMaps("durable").Get(ctx, "cm-29", metav1.GetOptions{})
	if err != nil || last.Labels["last"] != "yes" {
		t.Errorf("last acknowledged write lost: %v %v", last.Labels, err)
	}
	if _, err := client.AppsV1().Deployments("durable").Get(ctx, "keep", metav1.GetOptions{}); err != nil {
		t.Errorf("deployment lost after kill -9: %v", err)
	}
}

// TestSigtermStopsCleanly expects exit code 0 within 10 s and the API port
// released, proof that every component stopped its listeners.
func TestSigtermStopsCleanly(t *testing.T) {
	server := harness.NewServer(t, "")
	server.StartReady()
	code, took, err := server.Terminate(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("SIGTERM to exit: %s", took)
	if code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}
	for _, port := range []int{server.Port, 10257, 10259} {
		if !harness.PortFree(port) {
			t.Errorf("port %d still in use after exit", port)
		}
	}
	if !strings.Contains(server.Log(), `"Component stopped" component="datastore"`) {
		t.Errorf("datastore stop not logged; shutdown order incomplete")
	}
}

// TestServerRefusesInvalidConfig proves the server names the bad field and
// its line and does not start.
func TestServerRefusesInvalidConfig(t *testing.T) {
	server := harness.NewServer(t, "  network:\n    podCIDR: 10.43.0.0/16\n")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, server.Bin, "server", "--data-dir", server.DataDir, "--config", server.ConfigPath).CombinedOutput()
	if err == nil {
		t.Fatalf("server started with overlapping CIDRs:\n%s", out)
	}
	want := server.ConfigPath + ":8: spec.network.podCIDR"
	if !strings.Contains(string(out), "spec.network.serviceCIDR") && !strings.Contains(string(out), want) {
		t.Fatalf("error does not name the field:\n%s", out)
	}
}
