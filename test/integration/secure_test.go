package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/cert"

	"github.com/monokube/monokube/test/harness"
)

// TestSecureDefaults gives each default its own check, each of which fails
// if that default is dropped.
func TestSecureDefaults(t *testing.T) {
	server := harness.NewServer(t, "")
	server.StartReady()

	t.Run("OnlyTLSListeners", func(t *testing.T) {
		ports := listeningPorts(t, server.PID())
		want := map[int]bool{server.Port: true, 10257: true, 10259: true}
		for port := range ports {
			if !want[port] {
				t.Errorf("unexpected listening port %d", port)
			}
		}
		for port := range want {
			if !ports[port] {
				t.Errorf("expected port %d to listen", port)
			}
			// Plain HTTP must not be served: Go's TLS server answers a
			// plain request with 400 and this body. Any error (refused,
			// reset, timeout) is a failure too: it is not a TLS listener.
			client := &http.Client{Timeout: 5 * time.Second}
			resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/api", port))
			if err != nil {
				t.Errorf("plain HTTP probe of port %d: %v", port, err)
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "Client sent an HTTP request to an HTTPS server") {
				t.Errorf("plain HTTP on port %d answered %d %q, want the TLS server's 400", port, resp.StatusCode, body)
			}
		}
	})

	t.Run("KeysAndKubeconfigsArePrivate", func(t *testing.T) {
		// The database with its WAL and shared-memory files (SQLite makes
		// them when it opens the database, with the database's mode).
		checkPrivateFiles(t, server.DataDir, "db/state.db", "db/state.db-wal", "db/state.db-shm",
			"pki/ca.key", "pki/apiserver.key", "pki/admin.conf")
	})

	t.Run("PodSecurityBaselineIsEnforced", func(t *testing.T) {
		privileged := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"root-shell"},
"spec":{"containers":[{"name":"c","image":"busybox:stable","securityContext":{"privileged":true}}]}}`
		// Admission looks up the namespace's default ServiceAccount first.
		client := server.Client()
		harness.Poll(t, 30*time.Second, "default ServiceAccount", func(ctx context.Context) (bool, error) {
			_, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
			return err == nil, nil
		})
		out, err := server.KubectlStdin(privileged, "-n", "default", "create", "-f", "-")
		if err == nil || !strings.Contains(out, `violates PodSecurity "baseline:latest"`) {
			t.Fatalf("privileged pod not refused in default (err=%v):\n%s", err, out)
		}
		server.MustKubectl("create", "namespace", "tools")
		server.MustKubectl("label", "namespace", "tools", "pod-security.kubernetes.io/enforce=privileged")
		harness.Poll(t, 30*time.Second, "default ServiceAccount in tools", func(ctx context.Context) (bool, error) {
			_, err := client.CoreV1().ServiceAccounts("tools").Get(ctx, "default", metav1.GetOptions{})
			return err == nil, nil
		})
		if out, err := server.KubectlStdin(privileged, "-n", "tools", "create", "-f", "-"); err != nil {
			t.Fatalf("privileged pod refused in a namespace labelled privileged: %v\n%s", err, out)
		}
	})
}

// TestSecretsEncryptedAtRest reads the raw SQLite files: with
// encryptionAtRest the Secret's value is nowhere in them, without it it is.
func TestSecretsEncryptedAtRest(t *testing.T) {
	for _, encrypted := range []bool{true, false} {
		t.Run(fmt.Sprintf("encryptionAtRest=%v", encrypted), func(t *testing.T) {
			server := harness.NewServer(t, "")
			server.WriteConfig(fmt.Sprintf("    encryptionAtRest: %v\n", encrypted), "")
			server.StartReady()
			const plaintext = "do-not-store-me-7391"
			server.MustKubectl("create", "secret", "generic", "vault", "--from-literal=password="+plaintext)
			if got := server.MustKubectl("get", "secret", "vault", "-o", "jsonpath={.data.password}"); got == "" {
				t.Fatal("secret not readable through the API")
			}
			if encrypted {
				// The config the API server reads its keys from.
				checkPrivateFiles(t, server.DataDir, "pki/encryption-config.yaml")
			}
			raw := datastoreBytes(t, server)
			hasPlain := bytes.Contains(raw, []byte(plaintext))
			hasCipher := bytes.Contains(raw, []byte("k8s:enc:secretbox:v1:monokube-1:"))
			if encrypted && (hasPlain || !hasCipher) {
				t.Errorf("encrypted: plaintext on disk=%v, secretbox envelope on disk=%v", hasPlain, hasCipher)
			}
			if !encrypted && !hasPlain {
				t.Errorf("control run: plaintext not found on disk; the check cannot tell encryption apart")
			}
		})
	}
}

// TestShortLivedCertificatesRenewAtStart uses a one-minute leaf validity
// renewed with 90% of it left, so every leaf is due for renewal at the
// next start (a server that was down when its leaves came due); the CA must
// stay. (The e2e TestCertificatesRenewWhileRunning covers renewal while it
// runs.)
func TestShortLivedCertificatesRenewAtStart(t *testing.T) {
	server := harness.NewServer(t, "  pki:\n    leafValidity: 1m\n    renewPercentLeft: 90\n")
	server.StartReady()
	oldCA := readFile(t, server.DataDir+"/pki/ca.crt")
	before := parseCert(t, readFile(t, server.DataDir+"/pki/apiserver.crt"))
	if left := time.Until(before.NotAfter); left > 2*time.Minute {
		t.Fatalf("leafValidity not applied: %s left", left)
	}
	server.Kill()
	time.Sleep(1100 * time.Millisecond) // so the renewed certificate's NotAfter is visibly later
	server.StartReady()

	after := parseCert(t, readFile(t, server.DataDir+"/pki/apiserver.crt"))
	if after.SerialNumber.Cmp(before.SerialNumber) == 0 || !after.NotAfter.After(before.NotAfter) {
		t.Fatalf("apiserver certificate not renewed: serial %s→%s, expiry %s→%s", before.SerialNumber, after.SerialNumber, before.NotAfter, after.NotAfter)
	}
	if !bytes.Equal(oldCA, readFile(t, server.DataDir+"/pki/ca.crt")) {
		t.Fatal("CA changed on renewal")
	}
	// A client that only knows the old CA still trusts the served certificate.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(oldCA)
	conn, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(server.Port), &tls.Config{RootCAs: pool, ServerName: "kubernetes.default.svc"})
	if err != nil {
		t.Fatalf("old CA does not trust the renewed serving certificate: %v", err)
	}
	served := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	if served.SerialNumber.Cmp(after.SerialNumber) != 0 {
		t.Errorf("server does not serve the renewed certificate")
	}
	stdout, stderr, err := server.Run("certs", "status")
	if err != nil {
		t.Fatalf("certs status: %v\n%s", err, stderr)
	}
	want := after.NotAfter.UTC().Format(time.RFC3339)
	if !strings.Contains(stdout, want) {
		t.Errorf("certs status lacks the new expiry %s:\n%s", want, stdout)
	}
}

// checkPrivateFiles walks dataDir: the data dir and its pki, db and run
// dirs must be 0700; every key (alone or paired, .pem), kubeconfig, database file (with -wal and
// -shm) and encryption config 0600. Each of required (relative to dataDir)
// must be among the files checked, so a file that is missing or named
// differently fails instead of passing unseen.
func checkPrivateFiles(t *testing.T, dataDir string, required ...string) {
	t.Helper()
	privateDirs := map[string]bool{dataDir: true}
	for _, dir := range []string{"pki", "db", "run"} {
		privateDirs[filepath.Join(dataDir, dir)] = true
	}
	private := func(path string) bool {
		for _, suffix := range []string{".key", ".pem", ".conf", ".db", ".db-wal", ".db-shm", "encryption-config.yaml", "audit.log"} {
			if strings.HasSuffix(path, suffix) {
				return true
			}
		}
		return false
	}
	checked := map[string]bool{}
	err := filepath.WalkDir(dataDir, func(path string, entry fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := entry.Info()
		if err != nil {
			return err
		}
		mode := info.Mode().Perm()
		switch {
		case entry.IsDir() && privateDirs[path]:
			checked[path] = true
			if mode != 0o700 {
				t.Errorf("directory %s is %o, want 0700", path, mode)
			}
		case !entry.IsDir() && private(path):
			checked[path] = true
			if mode != 0o600 {
				t.Errorf("%s is %o, want 0600", path, mode)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for dir := range privateDirs {
		if !checked[dir] {
			t.Errorf("directory %s not found: its mode was not checked", dir)
		}
	}
	for _, name := range required {
		if !checked[filepath.Join(dataDir, name)] {
			t.Errorf("%s not found: its mode was not checked", name)
		}
	}
	if len(checked) < 10 {
		t.Errorf("only %d private files and dirs found", len(checked))
	}
}

// datastoreBytes is everything SQLite has on disk: the database and its WAL.
func datastoreBytes(t *testing.T, server *harness.Server) []byte {
	t.Helper()
	var all []byte
	for _, name := range []string{"state.db", "state.db-wal"} {
		raw, err := os.ReadFile(filepath.Join(server.DataDir, "db", name))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		all = append(all, raw...)
	}
	return all
}

// listeningPorts are the TCP ports pid listens on, from /proc/net/tcp{,6}
// matched against the socket inodes among the process's file descriptors.
func listeningPorts(t *testing.T, pid int) map[int]bool {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(target, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] = true
		}
	}
	ports := map[int]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		file, err := os.Open(table)
		if err != nil {
			continue
		}
		scanner := bufio.NewScanner(file)
		for scanner.Scan() {
			fields := strings.Fields(scanner.Text())
			// local_address is field 1 (IP:PORT in hex), st is field 3 (0A = LISTEN), inode is field 9.
			if len(fields) < 10 || fields[3] != "0A" || !inodes[fields[9]] {
				continue
			}
			hexPort := fields[1][strings.LastIndex(fields[1], ":")+1:]
			port, _ := strconv.ParseInt(hexPort, 16, 32)
			ports[int(port)] = true
		}
		file.Close()
	}
	return ports
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func parseCert(t *testing.T, pemBytes []byte) *x509.Certificate {
	t.Helper()
	certs, err := cert.ParseCertsPEM(pemBytes)
	if err != nil {
		t.Fatalf("parse certificate: %v", err)
	}
	return certs[0]
}
