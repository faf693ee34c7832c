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
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	server := httptest.NewUnstartedServer(http.NotFoundHandler())
	server.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	server.StartTLS()
	t.Cleanup(server.Close)
	return server.URL, join.CAHash(ca.Cert)
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
