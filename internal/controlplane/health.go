package controlplane

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// waitHealthy polls https://127.0.0.1:<port>/healthz until it answers "ok".
// A port of "0" means serving is off and there is nothing to wait for.
func waitHealthy(ctx context.Context, port string) error {
	return pollHealthz(ctx, port, "/healthz", func(status int, _ string) bool { return status == http.StatusOK })
}

// pollHealthz polls a health path on 127.0.0.1:<port> until done accepts
// the answer. The scheduler and controller-manager serve it with a
// self-signed certificate they make in memory, so there is no CA to verify
// against; the probe sends nothing secret and only talks to loopback.
func pollHealthz(ctx context.Context, port, path string, done func(status int, body string) bool) error {
	if port == "0" {
		return nil
	}
	client := &http.Client{
		Timeout:   time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // see above
	}
	defer client.CloseIdleConnections()
	url := "https://" + net.JoinHostPort("127.0.0.1", port) + path
	var last string
	err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := client.Do(req)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		last = fmt.Sprintf("%d %s", resp.StatusCode, body)
		return done(resp.StatusCode, string(body)), nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %s (last answer: %s): %w", url, last, err)
	}
	return nil
}
