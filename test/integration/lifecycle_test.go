package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
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

// TestSigtermStopsCleanly expects exit code 0 within 10 s, and every
// component that became ready stopped cleanly, in reverse start order (the
// log of component.Manager is the record: a component that failed to stop
// logs "Component did not stop cleanly" instead of "Component stopped").
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
	log := server.Log()
	ready, stopped := componentEvents(log, "Component ready"), componentEvents(log, "Component stopped")
	if !slices.Contains(ready, "datastore") {
		t.Fatalf("components ready %v lack the datastore: the log format changed and this check would prove nothing", ready)
	}
	t.Logf("ready in order %v; stopped in order %v", ready, stopped)
	want := slices.Clone(ready)
	slices.Reverse(want)
	if !slices.Equal(stopped, want) {
		t.Errorf("components stopped %v, want every ready one in reverse start order %v", stopped, want)
	}
}

// componentEvents lists, in log order, the components named by the
// component manager's lines with this message.
func componentEvents(log, message string) []string {
	pattern := regexp.MustCompile(`"` + regexp.QuoteMeta(message) + `" component="([^"]+)"`)
	var names []string
	for _, match := range pattern.FindAllStringSubmatch(log, -1) {
		names = append(names, match[1])
	}
	return names
}

// TestServerRefusesInvalidConfig proves the server names the bad field and
// its line, exits with an error at once and does not start.
func TestServerRefusesInvalidConfig(t *testing.T) {
	// Line 8 is podCIDR (the config header takes 1-6); it overlaps the
	// default service CIDR, so the error points at the line the user wrote.
	server := harness.NewServer(t, "  network:\n    podCIDR: 10.43.0.0/16\n")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, server.Bin, "server", "--data-dir", server.DataDir, "--config", server.ConfigPath).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("server still running after 20 s with an invalid config (hung instead of refusing):\n%s", out)
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("server started with overlapping CIDRs (err %v):\n%s", err, out)
	}
	want := server.ConfigPath + ":8: spec.network.podCIDR: 10.43.0.0/16 overlaps spec.network.serviceCIDR"
	if !strings.Contains(string(out), want) {
		t.Fatalf("error does not name the field with its line %q:\n%s", want, out)
	}
	// The launcher's unpack (payload/) is the only thing there.
	if entries, _ := os.ReadDir(server.DataDir); len(entries) > 1 || (len(entries) == 1 && entries[0].Name() != "payload") {
		t.Errorf("data dir %s holds %v: the server began starting before it checked the config", server.DataDir, entries)
	}
}
