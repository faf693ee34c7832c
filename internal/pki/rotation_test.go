package pki

import (
	"os"
	"strings"
	"testing"

	"k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

// During a CA rotation ca.crt holds two CAs; the one ca.key belongs to
// signs, whichever comes first, and the controller-manager's signing file
// holds it alone.
func TestServerWithTwoCAsSignsWithTheKeysCA(t *testing.T) {
	req := testRequest(t)
	files := ensureServer(t, req)
	next, err := NewAuthority("next-ca")
	if err != nil {
		t.Fatal(err)
	}
	nextKey, err := keyutil.MarshalPrivateKeyToPEM(next.Key)
	if err != nil {
		t.Fatal(err)
	}
	old := mustRead(t, files.CACert())
	// Stage rotated: the new CA first, with its key.
	if err := os.WriteFile(files.CACert(), append(append([]byte{}, next.CertPEM...), old...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(files.CAKey(), nextKey, 0o600); err != nil {
		t.Fatal(err)
	}
	ensureServer(t, req)
	if err := readCert(t, files.Cert(APIServer)).CheckSignatureFrom(next.Cert); err != nil {
		t.Errorf("the API server's certificate was not re-issued under the CA of ca.key: %v", err)
	}
	signing, err := cert.CertsFromFile(files.SigningCACert())
	if err != nil || len(signing) != 1 || !signing[0].Equal(next.Cert) {
		t.Errorf("ca-signing.crt holds %d certificates (want the new CA alone): %v", len(signing), err)
	}
	// Both CAs are trusted: the pair serves them after the certificate.
	pair, err := cert.CertsFromFile(files.Pair(APIServer))
	if err != nil || len(pair) != 3 {
		t.Fatalf("apiserver.pem holds %d certificates, want the leaf and two CAs: %v", len(pair), err)
	}
	// Finished: the old CA alone is retired and served last, for joiners
	// whose token pins it.
	if err := os.WriteFile(files.CACert(), next.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(RetiredFile(files.CACert()), old, 0o644); err != nil {
		t.Fatal(err)
	}
	ensureServer(t, req)
	pair, _ = cert.CertsFromFile(files.Pair(APIServer))
	if len(pair) != 3 || !pair[1].Equal(next.Cert) || pair[2].Subject.CommonName != "kubernetes-ca" {
		t.Errorf("apiserver.pem after the rotation: %d certificates, want leaf, new CA, retired CA", len(pair))
	}
	if !strings.HasSuffix(RetiredFile("/x/ca.crt"), "/x/ca-retired.crt") {
		t.Error(RetiredFile("/x/ca.crt"))
	}
}

func TestCAFileWithoutItsKeysCertificateIsRefused(t *testing.T) {
	files := ensureServer(t, testRequest(t))
	other, err := NewAuthority("other")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(files.CACert(), other.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadAuthority(files.CACert(), files.CAKey()); err == nil || !strings.Contains(err.Error(), "belongs to the key") {
		t.Errorf("a ca.crt without ca.key's certificate: %v", err)
	}
}
