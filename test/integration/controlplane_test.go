// Package integration starts the real monokube binary (control plane only)
// and drives it with the stock kubectl and client-go.
package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/monokube/monokube/test/harness"
)

// TestControlPlaneRunsClusterOperations shares one server between checks
// that only read or add objects.
func TestControlPlaneRunsClusterOperations(t *testing.T) {
	server := harness.NewServer(t, "")
	server.StartReady()

	t.Run("ReadyzAnswersOK", func(t *testing.T) {
		if out := server.MustKubectl("get", "--raw", "/readyz"); out != "ok" {
			t.Fatalf("/readyz = %q", out)
		}
	})

	t.Run("DeploymentGetsReplicaSetAndPendingPods", func(t *testing.T) {
		server.MustKubectl("create", "namespace", "shop")
		server.MustKubectl("-n", "shop", "create", "configmap", "settings", "--from-literal=color=blue")
		server.MustKubectl("-n", "shop", "create", "deployment", "web", "--image=busybox:stable", "--replicas=2")
		client := server.Client()
		var pods *corev1.PodList
		// The controller-manager makes the ReplicaSet and Pods; the scheduler
		// marks them unschedulable because there is no node yet.
		harness.Poll(t, time.Minute, "two unschedulable pods", func(ctx context.Context) (bool, error) {
			var err error
			pods, err = client.CoreV1().Pods("shop").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			if err != nil || len(pods.Items) != 2 {
				return false, nil
			}
			for _, pod := range pods.Items {
				if !unschedulable(&pod) {
					return false, nil
				}
			}
			return true, nil
		})
		rs, err := client.AppsV1().ReplicaSets("shop").List(context.Background(), metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil || len(rs.Items) != 1 {
			t.Fatalf("want one ReplicaSet, got %v (err %v)", rs, err)
		}
		if phase := pods.Items[0].Status.Phase; phase != corev1.PodPending {
			t.Fatalf("pod phase %s, want Pending", phase)
		}
		if out := server.MustKubectl("-n", "shop", "get", "configmap", "settings", "-o", "jsonpath={.data.color}"); out != "blue" {
			t.Fatalf("configmap data = %q", out)
		}
	})

	t.Run("NewNamespaceGetsDefaultServiceAccount", func(t *testing.T) {
		server.MustKubectl("create", "namespace", "fresh")
		client := server.Client()
		harness.Poll(t, 30*time.Second, "default ServiceAccount in fresh", func(ctx context.Context) (bool, error) {
			_, err := client.CoreV1().ServiceAccounts("fresh").Get(ctx, "default", metav1.GetOptions{})
			return err == nil, nil
		})
		// The token controller path works too: a token can be requested for it.
		out := server.MustKubectl("-n", "fresh", "create", "token", "default")
		if strings.Count(strings.TrimSpace(out), ".") != 2 {
			t.Fatalf("token does not look like a JWT: %q", out)
		}
	})

	t.Run("AnonymousRequestIsUnauthorized", func(t *testing.T) {
		ca, err := os.ReadFile(server.DataDir + "/pki/ca.crt")
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ca)
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		for _, path := range []string{"/api/v1/namespaces", "/readyz", "/version"} {
			resp, err := client.Get("https://127.0.0.1:" + strconv.Itoa(server.Port) + path)
			if err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("anonymous GET %s = %d, want 401", path, resp.StatusCode)
			}
		}
	})

	t.Run("EmbeddedKubectlNeedsNoFlags", func(t *testing.T) {
		for _, args := range [][]string{{"kubectl", "version"}, {"kubectl", "get", "ns"}} {
			cmd := exec.Command(server.Bin, args...)
			// Only the data dir is given, as the environment a k3s user would set;
			// HOME is empty so no ~/.kube/config can help.
			cmd.Env = []string{"MONOKUBE_DATA_DIR=" + server.DataDir, "HOME=" + t.TempDir(), "PATH=/usr/bin:/bin"}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("monokube %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			if args[1] == "version" && !strings.Contains(string(out), "Server Version: v1.37.1") {
				t.Errorf("kubectl version output lacks the server version:\n%s", out)
			}
			if args[1] == "get" && !strings.Contains(string(out), "kube-system") {
				t.Errorf("kubectl get ns output lacks kube-system:\n%s", out)
			}
		}
	})

	t.Run("DataDirAnywhereOnAClientCommand", func(t *testing.T) {
		empty := t.TempDir()
		env := []string{"HOME=" + t.TempDir(), "PATH=/usr/bin:/bin"}
		for _, tc := range []struct {
			args []string
			want string // in the output; "" for a failure naming the missing admin.conf
		}{
			{[]string{"kubectl", "get", "ns", "--data-dir", server.DataDir}, "kube-system"},
			{[]string{"kubectl", "get", "--data-dir=" + server.DataDir, "ns"}, "kube-system"},
			{[]string{"--data-dir", server.DataDir, "kubectl", "get", "ns"}, "kube-system"},
			{[]string{"kubectl", "version", "--client", "--data-dir", empty}, "Client Version"},
			{[]string{"--data-dir", empty, "kubectl", "get", "ns"}, ""},
			{[]string{"kubectl", "get", "ns", "--data-dir", empty}, ""},
		} {
			cmd := exec.Command(server.Bin, tc.args...)
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			switch {
			case tc.want != "" && (err != nil || !strings.Contains(string(out), tc.want)):
				t.Errorf("monokube %s: %v, want %q in:\n%s", strings.Join(tc.args, " "), err, tc.want, out)
			case tc.want == "" && (err == nil || !strings.Contains(string(out), filepath.Join(empty, "pki", "admin.conf")) || strings.Contains(string(out), "8080")):
				t.Errorf("monokube %s: %v, want a failure naming %s/pki/admin.conf:\n%s", strings.Join(tc.args, " "), err, empty, out)
			}
		}
		// ctr takes it anywhere too: this server runs no node, so the
		// refusal names this data dir's socket.
		cmd := exec.Command(server.Bin, "ctr", "images", "ls", "--data-dir", server.DataDir)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "with data dir "+server.DataDir) {
			t.Errorf("monokube ctr images ls --data-dir D: %v\n%s", err, out)
		}
	})

	t.Run("AdminKubeconfigNamesAdvertisedServer", func(t *testing.T) {
		out, err := exec.Command(server.Bin, "kubeconfig", "admin", "--data-dir", server.DataDir).Output()
		if err != nil {
			t.Fatal(err)
		}
		want := "server: https://127.0.0.1:" + strconv.Itoa(server.Port)
		if !strings.Contains(string(out), want) {
			t.Fatalf("admin kubeconfig lacks %q:\n%s", want, out)
		}
	})

	t.Run("SecondServerOnSameDataDirFailsFast", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, server.Bin, "server", "--data-dir", server.DataDir, "--config", server.ConfigPath)
		out, err := cmd.CombinedOutput()
		if err == nil || ctx.Err() != nil {
			t.Fatalf("second server did not fail fast (err %v, ctx %v):\n%s", err, ctx.Err(), out)
		}
		if !strings.Contains(string(out), "is in use by another monokube process") {
			t.Fatalf("unclear error from second server:\n%s", out)
		}
	})
}

func unschedulable(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return true
		}
	}
	return false
}
