package integration

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	kmsservice "k8s.io/kms/pkg/service"

	"github.com/monokube/monokube/test/harness"
)

// TestSecretsEncryptionKeyRotation rotates the key that encrypts Secrets
// on a running server while a client reads Secrets ten times a second:
// after `rotate` new Secrets are stored under the new key and old ones
// still read; after `reencrypt` the SQLite file holds every Secret under
// the new key and the old key is gone; the reader saw no error; the keys
// survive a kill -9. Then the provider changes to KMS v2, with a plugin
// this test serves on k8s.io/kms, and a second rotation moves every
// Secret under the plugin's envelope.
func TestSecretsEncryptionKeyRotation(t *testing.T) {
	server := harness.NewServer(t, "")
	server.WriteConfig("    encryptionAtRest: true\n", "")
	server.StartReady()
	client := server.Client()
	ctx := context.Background()
	const count = 40
	for i := range count {
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("s-%d", i)}, StringData: map[string]string{"v": fmt.Sprintf("value-%d", i)}}
		if _, err := client.CoreV1().Secrets("default").Create(ctx, secret, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	requireStoredUnder(t, server, "k8s:enc:secretbox:v1:monokube-1:")
	reader := readSecretsContinuously(t, client)

	out := secretsEncrypt(t, server, "rotate")
	if !strings.Contains(out, "Key monokube-2 now encrypts") {
		t.Fatalf("rotate output:\n%s", out)
	}
	status := secretsEncrypt(t, server, "status")
	if !strings.Contains(status, "Stage:") || !strings.Contains(status, "rotated") ||
		!hasLine(status, "monokube-2:", "secretbox (write)") || !hasLine(status, "monokube-1:", "secretbox (read)") {
		t.Fatalf("status after rotate:\n%s", status)
	}
	server.MustKubectl("create", "secret", "generic", "after-rotate", "--from-literal=v=new")
	stored := server.StoredSecrets()
	if !strings.HasPrefix(string(stored["/registry/secrets/default/after-rotate"]), "k8s:enc:secretbox:v1:monokube-2:") ||
		!strings.HasPrefix(string(stored["/registry/secrets/default/s-0"]), "k8s:enc:secretbox:v1:monokube-1:") {
		t.Fatal("after rotate: a new Secret must be under monokube-2 and an old one still under monokube-1")
	}

	out = secretsEncrypt(t, server, "reencrypt")
	m := regexp.MustCompile(`Rewritten (\d+)/(\d+) Secrets in`).FindStringSubmatch(out)
	if done, _ := strconv.Atoi(safeIndex(m, 1)); m == nil || m[1] != m[2] || done < count+1 {
		t.Fatalf("reencrypt does not say it rewrote every Secret (%d or more):\n%s", count+1, out)
	}
	t.Logf("reencrypt:\n%s", out)
	requireStoredUnder(t, server, "k8s:enc:secretbox:v1:monokube-2:")
	status = secretsEncrypt(t, server, "status")
	if !strings.Contains(status, "reencrypted") || strings.Contains(status, "monokube-1") {
		t.Fatalf("status after reencrypt:\n%s", status)
	}
	if config := readFile(t, filepath.Join(server.DataDir, "pki", "encryption-config.yaml")); strings.Contains(string(config), "monokube-1") {
		t.Fatalf("the old key is still in the API server's config:\n%s", config)
	}
	reads, failures := reader()
	if failures != nil || reads < 10 {
		t.Fatalf("reader during the rotation: %d reads, errors: %v", reads, failures)
	}
	t.Logf("reader: %d reads, 0 errors", reads)

	server.Kill()
	server.StartReady()
	if got := server.MustKubectl("get", "secret", "s-7", "-o", "jsonpath={.data.v}"); got != "dmFsdWUtNw==" {
		t.Fatalf("after kill -9 and start, s-7 reads %q", got)
	}

	t.Run("ToKMSv2", func(t *testing.T) {
		plugin := startKMSPlugin(t)
		server.Kill()
		server.WriteConfig("    encryptionAtRest: true\n", "  secretsEncryption:\n    provider: kms\n    kms:\n      endpoint: unix://"+plugin.socket+"\n")
		server.StartReady()
		// The server reports its settings once it is up; rotate reads them.
		harness.Poll(t, 30*time.Second, "server reports provider kms", func(context.Context) (bool, error) {
			out, _, err := server.Run("secrets-encrypt", "status")
			return err == nil && strings.Contains(out, " kms "), nil
		})
		secretsEncrypt(t, server, "rotate")
		secretsEncrypt(t, server, "reencrypt")
		requireStoredUnder(t, server, "k8s:enc:kms:v2:monokube-3:")
		if plugin.encrypts.Load() == 0 {
			t.Fatal("the KMS plugin was never asked to encrypt")
		}
		if got := server.MustKubectl("get", "secret", "s-7", "-o", "jsonpath={.data.v}"); got != "dmFsdWUtNw==" {
			t.Fatalf("under KMS, s-7 reads %q", got)
		}
	})
}

func safeIndex(m []string, i int) string {
	if i < len(m) {
		return m[i]
	}
	return ""
}

// hasLine is whether one line of text holds every part.
func hasLine(text string, parts ...string) bool {
	for _, line := range strings.Split(text, "\n") {
		all := true
		for _, part := range parts {
			all = all && strings.Contains(line, part)
		}
		if all {
			return true
		}
	}
	return false
}

func secretsEncrypt(t *testing.T, server *harness.Server, verb string) string {
	t.Helper()
	start := time.Now()
	out, errOut, err := server.Run("secrets-encrypt", verb)
	if err != nil {
		t.Fatalf("secrets-encrypt %s: %v\n%s%s", verb, err, out, errOut)
	}
	t.Logf("secrets-encrypt %s took %s", verb, time.Since(start).Round(time.Millisecond))
	return out
}

// requireStoredUnder checks every Secret in the file starts with prefix.
func requireStoredUnder(t *testing.T, server *harness.Server, prefix string) {
	t.Helper()
	stored := server.StoredSecrets()
	if len(stored) == 0 {
		t.Fatal("no Secrets found in state.db: the check cannot tell")
	}
	for key, value := range stored {
		if !strings.HasPrefix(string(value), prefix) {
			end := min(len(value), 40)
			t.Errorf("%s is stored as %q..., want prefix %s", key, value[:end], prefix)
		}
	}
}

// readSecretsContinuously reads a Secret ten times a second until the
// returned function is called, which reports the reads and any errors.
func readSecretsContinuously(t *testing.T, client kubernetes.Interface) func() (int, error) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var reads int
	var failures []error
	wg.Add(1)
	go func() {
		defer wg.Done()
		ticker := time.NewTicker(100 * time.Millisecond)
		defer ticker.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
			name := fmt.Sprintf("s-%d", i%40)
			secret, err := client.CoreV1().Secrets("default").Get(ctx, name, metav1.GetOptions{})
			if ctx.Err() != nil {
				return
			}
			reads++
			if err == nil && string(secret.Data["v"]) != fmt.Sprintf("value-%d", i%40) {
				err = fmt.Errorf("%s reads %q", name, secret.Data["v"])
			}
			if err != nil {
				failures = append(failures, err)
			}
		}
	}()
	t.Cleanup(cancel)
	return func() (int, error) {
		cancel()
		wg.Wait()
		return reads, errors.Join(failures...)
	}
}

// kmsPlugin is a KMS v2 plugin on upstream's k8s.io/kms service: AES-GCM
// with a key it makes, standing in for an external key manager.
type kmsPlugin struct {
	socket   string
	aead     cipher.AEAD
	encrypts atomic.Int64
}

const kmsKeyID = "test-kek-1"

func startKMSPlugin(t *testing.T) *kmsPlugin {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	block, _ := aes.NewCipher(key)
	aead, _ := cipher.NewGCM(block)
	p := &kmsPlugin{socket: filepath.Join(t.TempDir(), "kms.sock"), aead: aead}
	service := kmsservice.NewGRPCService(p.socket, 5*time.Second, p)
	go func() { _ = service.ListenAndServe() }()
	t.Cleanup(service.Close)
	return p
}

func (p *kmsPlugin) Encrypt(_ context.Context, _ string, data []byte) (*kmsservice.EncryptResponse, error) {
	p.encrypts.Add(1)
	nonce := make([]byte, p.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return &kmsservice.EncryptResponse{Ciphertext: p.aead.Seal(nonce, nonce, data, nil), KeyID: kmsKeyID}, nil
}

func (p *kmsPlugin) Decrypt(_ context.Context, _ string, req *kmsservice.DecryptRequest) ([]byte, error) {
	if len(req.Ciphertext) < p.aead.NonceSize() {
		return nil, errors.New("ciphertext too short")
	}
	n := p.aead.NonceSize()
	return p.aead.Open(nil, req.Ciphertext[:n], req.Ciphertext[n:], nil)
}

func (p *kmsPlugin) Status(context.Context) (*kmsservice.StatusResponse, error) {
	return &kmsservice.StatusResponse{Version: "v2", Healthz: "ok", KeyID: kmsKeyID}, nil
}
