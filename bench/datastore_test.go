package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/monokube/monokube/test/harness"
)

// writeReport is the API write path on one datastore shape.
type writeReport struct {
	Datastore    string  `json:"datastore"`
	Servers      int     `json:"servers"`
	Objects      int     `json:"objects"`
	Clients      int     `json:"clients"`
	Seconds      float64 `json:"seconds"`
	PerSecond    float64 `json:"creates_per_second"`
	P50MS        float64 `json:"p50_ms"`
	P99MS        float64 `json:"p99_ms"`
	ServerRSSMiB float64 `json:"first_server_rss_mib"`
	BackupMS     float64 `json:"backup_ms,omitempty"`
	RestoreMS    float64 `json:"restore_ms,omitempty"`
	ArchiveKiB   int64   `json:"archive_kib,omitempty"`
}

// TestDatastoreNumbers creates MONOKUBE_BENCH_WRITES ConfigMaps (default
// 2000) from 8 clients through the first server, on SQLite, embedded etcd
// with 1 and 3 members, and PostgreSQL and MariaDB shared by 2 servers,
// and reports throughput, latency and the first server's RSS; on SQLite
// and etcd also how long a backup and a restore of that cluster take.
func TestDatastoreNumbers(t *testing.T) {
	if testing.Short() || envInt("MONOKUBE_BENCH", 0) == 0 {
		t.Skip("set MONOKUBE_BENCH=1 (or run `make bench`)")
	}
	objects := envInt("MONOKUBE_BENCH_WRITES", 2000)
	shapes := []struct {
		kind    string
		servers int
	}{{"sqlite", 1}, {"etcd", 1}, {"etcd", 3}, {"postgres", 2}, {"mysql", 2}}
	var reports []writeReport
	for _, shape := range shapes {
		t.Run(fmt.Sprintf("%s-%d", shape.kind, shape.servers), func(t *testing.T) {
			c := harness.NewCluster(t, "")
			spec := ""
			switch shape.kind {
			case "etcd":
				spec = "  storage:\n    type: etcd\n"
			case "postgres":
				spec = fmt.Sprintf("  storage:\n    type: postgres\n    dataSource: %q\n", harness.StartPostgres(t, c.Server, c.Network.Subnet).DSN)
			case "mysql":
				spec = fmt.Sprintf("  storage:\n    type: mysql\n    dataSource: %q\n", harness.StartMariaDB(t, c.Server).DSN)
			}
			servers := []*harness.Node{c.Server}
			for len(servers) < shape.servers {
				servers = append(servers, c.NewNode(spec))
			}
			servers[0].WriteConfig("", spec)
			servers[0].StartServer()
			servers[0].WaitReady(3 * time.Minute)
			for _, s := range servers[1:] {
				s.StartServer("--token", servers[0].ControllerToken())
				s.WaitReady(3 * time.Minute)
			}
			report := writeConfigMaps(t, servers[0], objects, 8)
			report.Datastore, report.Servers = shape.kind, shape.servers
			report.ServerRSSMiB = rssMiB(t, servers[0].PID())
			if shape.kind == "sqlite" || shape.servers == 1 {
				report.BackupMS, report.RestoreMS, report.ArchiveKiB = backupRestore(t, servers[0])
			}
			t.Logf("%+v", report)
			reports = append(reports, report)
		})
	}
	out, _ := json.MarshalIndent(reports, "", "  ")
	fmt.Printf("DATASTORE %s\n", out)
}

// writeConfigMaps creates count ConfigMaps from clients goroutines with a
// client that is not rate-limited, so the datastore is what is measured.
func writeConfigMaps(t *testing.T, server interface{ AdminKubeconfig() string }, count, clients int) writeReport {
	client := unlimitedClient(t, server)
	latencies := make([]time.Duration, count)
	var wg sync.WaitGroup
	began := time.Now()
	for worker := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := worker; i < count; i += clients {
				cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%05d", i)}, Data: map[string]string{"value": strings.Repeat("x", 256)}}
				start := time.Now()
				if _, err := client.CoreV1().ConfigMaps("default").Create(context.Background(), cm, metav1.CreateOptions{}); err != nil {
					t.Errorf("create %s: %v", cm.Name, err)
					return
				}
				latencies[i] = time.Since(start)
			}
		}()
	}
	wg.Wait()
	took := time.Since(began)
	slices.Sort(latencies)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return writeReport{
		Objects: count, Clients: clients, Seconds: took.Seconds(), PerSecond: float64(count) / took.Seconds(),
		P50MS: ms(latencies[count/2]), P99MS: ms(latencies[count*99/100]),
	}
}

// unlimitedClient is an admin client without client-go's rate limit, so
// the server is what a benchmark measures.
func unlimitedClient(t *testing.T, server interface{ AdminKubeconfig() string }) kubernetes.Interface {
	t.Helper()
	config, err := clientcmd.BuildConfigFromFlags("", server.AdminKubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	config.QPS, config.Burst = 10000, 10000
	// Pod Security's warnings for the test pods would be most of a soak's log.
	config.WarningHandler = rest.NoWarnings{}
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// backupRestore times `monokube backup` on the running server and
// `monokube restore` of that archive into a fresh data dir.
func backupRestore(t *testing.T, server *harness.Node) (backupMS, restoreMS float64, archiveKiB int64) {
	dir := t.TempDir()
	began := time.Now()
	out, err := server.InNode(server.Bin, "backup", "--data-dir", server.DataDir, "--config", server.ConfigPath, "--save-path", dir)
	if err != nil {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	backupMS = float64(time.Since(began).Microseconds()) / 1000
	archives, _ := filepath.Glob(filepath.Join(dir, "*.tar.gz"))
	if len(archives) != 1 {
		t.Fatalf("backup wrote %v", archives)
	}
	if info, err := statSize(archives[0]); err == nil {
		archiveKiB = info / 1024
	}
	began = time.Now()
	if out, err := server.InNode(server.Bin, "restore", archives[0], "--data-dir", filepath.Join(dir, "restored")); err != nil {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	return backupMS, float64(time.Since(began).Microseconds()) / 1000, archiveKiB
}

func statSize(path string) (int64, error) {
	info, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return info.Size(), nil
}
