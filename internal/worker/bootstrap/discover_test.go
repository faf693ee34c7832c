package bootstrap

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/monokube/monokube/internal/join"
	"github.com/monokube/monokube/internal/pki"
)

// pinServer serves TLS with a certificate for 127.0.0.1 from a fresh CA;
// withCA says whether the CA follows the certificate in the chain.
func pinServer(t *testing.T, withCA bool) (url string, caHash string) {
	t.Helper()
	dir := t.TempDir()
	ca, err := pki.LoadOrCreateAuthority(dir, "ca", "test-ca")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue(pki.Leaf{Name: "serving", CommonName: "server", IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	if withCA {
		certPEM = append(certPEM, ca.CertPEM...)
	}
	return serveChain(t, certPEM, keyPEM), join.CAHash(ca.Cert)
}

// serveChain serves TLS with chain (PEM) and its first certificate's key.
func serveChain(t *testing.T, chain, keyPEM []byte) (url string) {
	t.Helper()
	pair, err := tls.X509KeyPair(chain, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	server := httptest.NewUnstartedServer(http.NotFoundHandler())
	server.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	server.StartTLS()
	t.Cleanup(server.Close)
	return server.URL
}

func tokenFor(url, caHash string) join.Token {
	return join.Token{Role: join.RoleWorker, Servers: []string{url}, CAHash: caHash, Bootstrap: "abcdef.0123456789abcdef"}
}

func TestDiscoverAcceptsThePinnedCA(t *testing.T) {
	url, hash := pinServer(t, true)
	server, ca, err := Discover(context.Background(), tokenFor(url, hash))
	if err != nil || server != url || join.CAHash(ca) != hash {
		t.Fatalf("Discover = %s, %v; want %s with the pinned CA", server, err, url)
	}
}

func TestDiscoverRefusesAnotherCAAtOnce(t *testing.T) {
	url, _ := pinServer(t, true)
	_, otherHash := pinServer(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _, err := Discover(ctx, tokenFor(url, otherHash))
	var refused *caRefused
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "is not the one this token pins") {
		t.Fatalf("Discover = %v, want an immediate pin refusal", err)
	}
}

func TestDiscoverNeedsTheCAInTheChain(t *testing.T) {
	url, hash := pinServer(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, _, err := Discover(ctx, tokenFor(url, hash))
	if err == nil || !strings.Contains(err.Error(), "does not present its CA") {
		t.Fatalf("Discover = %v, want a refusal saying the CA is missing", err)
	}
}

// After a CA rotation a server still shows the CA it dropped, last in its
// chain: a token pinning it is told the CA rotated, not that someone
// impersonates the server.
func TestDiscoverSaysTheCARotated(t *testing.T) {
	dir := t.TempDir()
	retired, err := pki.LoadOrCreateAuthority(dir, "old", "old-ca")
	if err != nil {
		t.Fatal(err)
	}
	current, err := pki.LoadOrCreateAuthority(dir, "ca", "new-ca")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := current.Issue(pki.Leaf{Name: "serving", CommonName: "server", IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	url := serveChain(t, append(append(certPEM, current.CertPEM...), retired.CertPEM...), keyPEM)
	_, _, err = Discover(context.Background(), tokenFor(url, join.CAHash(retired.Cert)))
	if !errors.Is(err, ErrCARotated) || !strings.Contains(err.Error(), "CA rotated") {
		t.Fatalf("Discover with a token pinning the retired CA = %v; want ErrCARotated", err)
	}
	if _, _, err := Discover(context.Background(), tokenFor(url, join.CAHash(current.Cert))); err != nil {
		t.Fatalf("Discover with a token pinning the current CA: %v", err)
	}
}
