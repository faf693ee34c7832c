package multinode

import (
	"context"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/monokube/monokube/test/harness"
)

// TestWorkerCertificatesRotateWhileRunning runs a cluster whose
// certificates live one minute. A worker's are signed by the cluster for
// that long (spec.pki.leafValidity) and rotated by the worker at 70-90% of
// their life: past the expiry of its first ones the worker must still
// renew its Node's lease (the kubelet's client certificate), run a new pod
// and stream its logs (the kubelet's serving certificate), and kube-proxy
// must still read Services (its own certificate).
func TestWorkerCertificatesRotateWhileRunning(t *testing.T) {
	c := harness.NewCluster(t, "  pki:\n    leafValidity: 1m\n    renewPercentLeft: 50\n")
	c.Server.StartReady()
	worker := c.AddWorker()
	worker.StartWorker(c.Token())
	c.WaitReady(worker)
	rotated := func() map[string]*x509.Certificate {
		return harness.Certificates(t, worker.DataDir, "kubelet/pki/kubelet-client-current.pem", "kubelet/pki/kubelet-server-current.pem", "agent/pki/kube-proxy-current.pem")
	}
	// The serving certificate is asked for once the kubelet runs and may
	// come after the Node is Ready.
	harness.Poll(t, time.Minute, "the worker's 3 certificates from the cluster", func(context.Context) (bool, error) {
		return len(rotated()) == 3, nil
	})
	first := rotated()
	expired := harness.LastExpiry(first)
	if left := time.Until(expired); left > 70*time.Second {
		t.Fatalf("the cluster signed the worker's certificates for longer than spec.pki.leafValidity: %s left", left)
	}
	harness.WaitReplaced(t, 2*time.Minute, first, rotated)
	time.Sleep(time.Until(expired.Add(5 * time.Second)))

	client := c.Client()
	harness.WaitLeaseRenewedAfter(t, client, worker.Name, expired)
	c.Server.Apply(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"on-worker"},"spec":{"nodeName":"` + worker.Name + `",
"containers":[{"name":"c","image":"` + harness.BusyboxImage + `","imagePullPolicy":"IfNotPresent","command":["sh","-c","echo rotated; sleep 3600"]}]}}`)
	harness.WaitPhase(t, client, "default", "on-worker", corev1.PodRunning)
	if out := c.Server.MustKubectl("logs", "on-worker"); strings.TrimSpace(out) != "rotated" {
		t.Errorf("logs = %q", out)
	}
	// kube-proxy lists Services and EndpointSlices with its own identity.
	c.Server.MustKubectl("create", "service", "clusterip", "after-rotation", "--tcp=80:80")
	harness.Poll(t, time.Minute, "kube-proxy on the worker programs the new Service", func(context.Context) (bool, error) {
		ip := strings.TrimSpace(c.Server.MustKubectl("get", "service", "after-rotation", "-o", "jsonpath={.spec.clusterIP}"))
		out, _ := worker.InNode("iptables-save") // no endpoints: a REJECT in the filter table
		return ip != "" && strings.Contains(out, ip), nil
	})
	harness.CheckNoExpiredCertificateUse(t, c.All()...)
}
