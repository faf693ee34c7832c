package pki

import (
	"bytes"
	"crypto/tls"
	"net"
	"path/filepath"
	"testing"
	"time"
)

func TestStatusSaysWhenEachCertificateRenews(t *testing.T) {
	req := testRequest(t)
	req.Validity, req.RenewPercentLeft = 100*time.Hour, 30
	files := ensureServer(t, req)
	if err := WriteRenewalPolicy(files.Dir, RenewalPolicy{RenewPercentLeft: 30}); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureEtcd(EtcdRequest{Dir: filepath.Join(files.Dir, "etcd"), Name: "node-1", IP: net.ParseIP("192.168.1.10"), Validity: 100 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	statuses, err := Status(files)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]CertificateStatus{}
	for _, s := range statuses {
		byName[s.Name] = s
	}
	for _, name := range []string{"ca", "etcd/ca"} {
		if s, ok := byName[name]; !ok || !s.IsCA || !s.RenewalDue.IsZero() {
			t.Errorf("%s: %+v, want a CA that is never renewed", name, s)
		}
	}
	apiserver := readCert(t, files.Cert(APIServer))
	// 100 h plus the backdated 5 min; 30% of that is left at renewal.
	want := apiserver.NotAfter.Add(-apiserver.NotAfter.Sub(apiserver.NotBefore) * 30 / 100)
	if got := byName[APIServer].RenewalDue; !got.Equal(want) {
		t.Errorf("apiserver renewal due %s, want %s (30%% of its life left)", got, want)
	}
	if s, ok := byName["etcd/server"]; !ok || s.RenewalDue.IsZero() || s.Rotated {
		t.Errorf("etcd/server: %+v, want a leaf the server renews", s)
	}
	if got := byName[APIServer].RenewalDue.Sub(time.Now()); got < 69*time.Hour || got > 71*time.Hour {
		t.Errorf("apiserver renews in %s, want about 70h", got)
	}
}

func TestPairFilesLoadAsCertificateAndKey(t *testing.T) {
	files := ensureServer(t, testRequest(t))
	for leaf, chain := range map[string]int{APIServer: 2, FrontProxyClient: 1, Admin: 1} {
		pair, err := tls.LoadX509KeyPair(files.Pair(leaf), files.Pair(leaf))
		if err != nil {
			t.Fatalf("%s.pem as certificate and key file: %v", leaf, err)
		}
		if len(pair.Certificate) != chain {
			t.Errorf("%s.pem holds %d certificates, want %d (the API server's serves the CA too)", leaf, len(pair.Certificate), chain)
		}
		if !bytes.Equal(pair.Certificate[0], readCert(t, files.Cert(leaf)).Raw) {
			t.Errorf("%s.pem is not %s.crt", leaf, leaf)
		}
	}
}
