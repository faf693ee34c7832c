package harness

import (
	"context"
	"crypto/x509"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/cert"
)

// Certificates reads the first certificate of every file matching the
// patterns (relative to dir), CAs left out, by path.
func Certificates(t testing.TB, dir string, patterns ...string) map[string]*x509.Certificate {
	t.Helper()
	out := map[string]*x509.Certificate{}
	for _, pattern := range patterns {
		paths, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, path := range paths {
			certs, err := cert.CertsFromFile(path)
			if err != nil {
				t.Fatalf("read %s: %v", path, err)
			}
			if !certs[0].IsCA {
				out[path] = certs[0]
			}
		}
	}
	return out
}

// LastExpiry is the latest NotAfter among certs.
func LastExpiry(certs map[string]*x509.Certificate) time.Time {
	var last time.Time
	for _, c := range certs {
		if c.NotAfter.After(last) {
			last = c.NotAfter
		}
	}
	return last
}

// WaitReplaced waits until every certificate in first has been replaced
// (another serial number) in what current reads.
func WaitReplaced(t testing.TB, timeout time.Duration, first map[string]*x509.Certificate, current func() map[string]*x509.Certificate) {
	t.Helper()
	Poll(t, timeout, "every certificate renewed", func(context.Context) (bool, error) {
		now := current()
		for path, was := range first {
			if c, ok := now[path]; !ok || c.SerialNumber.Cmp(was.SerialNumber) == 0 {
				return false, nil
			}
		}
		return true, nil
	})
}

// WaitLeaseRenewedAfter waits for the kubelet of node to renew its Node
// lease after a moment: proof that its client certificate still works.
func WaitLeaseRenewedAfter(t testing.TB, client kubernetes.Interface, node string, after time.Time) {
	t.Helper()
	Poll(t, time.Minute, "the lease of "+node+" renewed after "+after.Format(time.RFC3339), func(ctx context.Context) (bool, error) {
		lease, err := client.CoordinationV1().Leases("kube-node-lease").Get(ctx, node, metav1.GetOptions{})
		return err == nil && lease.Spec.RenewTime != nil && lease.Spec.RenewTime.After(after), nil
	})
}

// CheckNoExpiredCertificateUse fails the test if a node's log shows a
// request refused for an expired or unknown certificate.
func CheckNoExpiredCertificateUse(t testing.TB, nodes ...*Node) {
	t.Helper()
	for _, failure := range []string{"certificate has expired", "Unable to authenticate the request"} {
		for _, node := range nodes {
			if log := node.Log(); strings.Contains(log, failure) {
				t.Errorf("%s: a request failed on an old certificate:\n%s", node.Name, GrepLines(log, failure))
			}
		}
	}
}
