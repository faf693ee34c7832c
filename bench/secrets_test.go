package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/monokube/monokube/test/harness"
)

// reencryptReport is a secrets-encryption key rotation on one SQLite server.
type reencryptReport struct {
	Secrets          int     `json:"secrets"`
	RotateSeconds    float64 `json:"rotate_seconds"`
	ReencryptSeconds float64 `json:"reencrypt_seconds"`
	RewritePerSecond float64 `json:"rewritten_per_second"`
	ReaderReads      int     `json:"reader_reads"`
	ReaderErrors     int     `json:"reader_errors"`
}

// TestSecretsReencryptNumbers stores MONOKUBE_BENCH_SECRETS Secrets (default
// 2000) on an encrypting server, then times `secrets-encrypt rotate` and
// `reencrypt` while a client reads a Secret ten times a second.
func TestSecretsReencryptNumbers(t *testing.T) {
	if testing.Short() || envInt("MONOKUBE_BENCH", 0) == 0 {
		t.Skip("set MONOKUBE_BENCH=1 (or run `make bench`)")
	}
	count := envInt("MONOKUBE_BENCH_SECRETS", 2000)
	server := harness.NewServer(t, "")
	server.WriteConfig("    encryptionAtRest: true\n", "")
	server.StartReady()
	client := unlimitedClient(t, server)
	ctx := context.Background()
	var wg sync.WaitGroup
	for worker := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := worker; i < count; i += 8 {
				secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%d", i)}, StringData: map[string]string{"v": "x"}}
				for {
					if _, err := client.CoreV1().Secrets("default").Create(ctx, secret, metav1.CreateOptions{}); err == nil {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()

	report := reencryptReport{Secrets: count}
	readerCtx, stop := context.WithCancel(ctx)
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		for i := 0; readerCtx.Err() == nil; i++ {
			_, err := client.CoreV1().Secrets("default").Get(readerCtx, fmt.Sprintf("bench-%d", i%count), metav1.GetOptions{})
			if readerCtx.Err() != nil {
				return
			}
			report.ReaderReads++
			if err != nil {
				report.ReaderErrors++
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	for _, verb := range []string{"rotate", "reencrypt"} {
		began := time.Now()
		out, errOut, err := server.Run("secrets-encrypt", verb)
		if err != nil {
			t.Fatalf("secrets-encrypt %s: %v\n%s%s", verb, err, out, errOut)
		}
		took := time.Since(began).Seconds()
		if verb == "rotate" {
			report.RotateSeconds = took
			continue
		}
		report.ReencryptSeconds = took
		if m := regexp.MustCompile(`\(([0-9]+)/s\)`).FindStringSubmatch(out); m != nil {
			report.RewritePerSecond, _ = strconv.ParseFloat(m[1], 64)
		}
		t.Logf("reencrypt:\n%s", out)
	}
	stop()
	readers.Wait()
	out, _ := json.MarshalIndent(report, "", "  ")
	fmt.Printf("SECRETS-REENCRYPT %s\n", out)
}
