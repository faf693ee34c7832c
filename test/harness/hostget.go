package harness

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"time"
)

// HostGet asks scheme://ip/ (port 80 or 443) for host's page (the Host header, and the TLS
// server name with roots to verify it), returning the body or "".
func HostGet(ctx context.Context, scheme, ip, host string, roots *x509.CertPool) string {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+host+"/", nil)
	if err != nil {
		return ""
	}
	port := "80"
	if scheme == "https" {
		port = "443"
	}
	transport := &http.Transport{
		// Every name resolves to the node: no DNS, no proxy.
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, net.JoinHostPort(ip, port))
		},
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: host},
	}
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}
