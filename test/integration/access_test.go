package integration

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/monokube/monokube/test/harness"
)

// TestUserCreateFollowsTheSeedFlow is the k0s walk-through: a user
// certificate signed by the cluster CA is Forbidden until RBAC grants its group.
func TestUserCreateFollowsTheSeedFlow(t *testing.T) {
	server := harness.NewServer(t, "")
	server.StartReady()
	demo := writeUserKubeconfig(t, server, "demo", "development")

	cert := clientCertificate(t, demo)
	if cert.Issuer.CommonName != "kubernetes-ca" {
		t.Errorf("issuer CN = %q, want kubernetes-ca", cert.Issuer.CommonName)
	}
	if cert.Subject.CommonName != "demo" || !slices.Equal(cert.Subject.Organization, []string{"development"}) {
		t.Errorf("subject = %s, want CN=demo, O=development", cert.Subject)
	}

	out, err := exec.Command(harness.Kubectl, "--kubeconfig", demo, "get", "nodes").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Forbidden") {
		t.Fatalf("want Forbidden before any binding, got err=%v:\n%s", err, out)
	}
	server.MustKubectl("create", "clusterrole", "node-reader", "--verb=get,list,watch", "--resource=nodes")
	server.MustKubectl("create", "clusterrolebinding", "development-node-reader", "--clusterrole=node-reader", "--group=development")
	harness.Poll(t, 30*time.Second, "demo allowed to list nodes", func(context.Context) (bool, error) {
		return exec.Command(harness.Kubectl, "--kubeconfig", demo, "get", "nodes").Run() == nil, nil
	})

	outsider := writeUserKubeconfig(t, server, "outsider", "qa")
	out, err = exec.Command(harness.Kubectl, "--kubeconfig", outsider, "get", "nodes").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Forbidden") {
		t.Fatalf("user of another group not forbidden (err=%v):\n%s", err, out)
	}

	// Signing needs only the CA files, not a running server.
	server.Kill()
	writeUserKubeconfig(t, server, "offline", "development")
}

// TestUserCreateRejectsBadNames checks the validation messages.
func TestUserCreateRejectsBadNames(t *testing.T) {
	server := harness.NewServer(t, "")
	server.StartReady()
	server.Kill()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"user", "create", "system:evil"}, `reserved prefix "system:"`},
		{[]string{"user", "create", "jane", "--groups", "system:masters"}, `reserved prefix "system:"`},
		{[]string{"user", "create", "jane doe"}, "printable ASCII without spaces"},
		{[]string{"user", "create", "jane", "--groups", "a/b"}, "not allowed"},
		{[]string{"user", "create", ""}, "must not be empty"},
	}
	for _, c := range cases {
		stdout, stderr, err := server.Run(c.args...)
		if err == nil || !strings.Contains(stderr, c.want) || stdout != "" {
			t.Errorf("monokube %q: err=%v stdout=%q stderr=%q, want failure mentioning %q", c.args, err, stdout, stderr, c.want)
		}
	}
	if _, stderr, err := server.Run("user", "create", "system:ops", "--allow-system"); err != nil {
		t.Errorf("--allow-system refused: %v %s", err, stderr)
	}
}

func writeUserKubeconfig(t *testing.T, server *harness.Server, name, group string) string {
	t.Helper()
	stdout, stderr, err := server.Run("user", "create", name, "--groups", group)
	if err != nil {
		t.Fatalf("user create %s: %v\n%s", name, err, stderr)
	}
	if _, err := clientcmd.Load([]byte(stdout)); err != nil {
		t.Fatalf("stdout is not only a kubeconfig: %v\n%s", err, stdout)
	}
	path := filepath.Join(t.TempDir(), name+".kubeconfig")
	if err := os.WriteFile(path, []byte(stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func clientCertificate(t *testing.T, kubeconfigPath string) *x509.Certificate {
	t.Helper()
	config, err := clientcmd.LoadFromFile(kubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, auth := range config.AuthInfos {
		block, _ := pem.Decode(auth.ClientCertificateData)
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return cert
	}
	t.Fatal("kubeconfig has no user")
	return nil
}
