package harness

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"

	"github.com/monokube/monokube/internal/pki"
)

// Registry is a real container registry on a Network: the CNCF
// distribution registry as Debian builds it (package docker-registry,
// 2.8.2), on a machine of its own (a network namespace with a veth on the
// Network's bridge, as a node has) at RegistryPort. It serves TLS with a
// certificate from a CA made for it and asks for a user and password
// (htpasswd), as a private registry does. Its storage is a test temp dir,
// so images survive Stop and Start. Nodes on the Network and the test
// process (through the host's leg) reach it at Host.
type Registry struct {
	// Host is "IP:5000", the registry part of the references nodes pull.
	Host string
	IP   string
	// DNSName is the certificate's other name beside IP ("registry.test");
	// nothing resolves it.
	DNSName string
	// CAFile is the PEM of the CA that signed the serving certificate, what
	// a client is given to trust the registry (containerd's hosts.toml `ca`).
	CAFile string
	// CAPEM is CAFile's content.
	CAPEM              []byte
	Username, Password string
	// NetNS is the registry's network namespace.
	NetNS string

	bin        string
	configPath string
	logPath    string
	roots      *x509.CertPool
	cmd        *exec.Cmd
	exited     chan struct{}
	exitErr    error
	t          testing.TB
}

// RegistryOptions are what a test may choose; zero values take defaults.
type RegistryOptions struct {
	// Username defaults to "monokube", Password to a random one.
	Username, Password string
	// DNSName defaults to "registry.test".
	DNSName string
}

// RegistryPort is the registry's port, the distribution registry's default.
const RegistryPort = 5000

// registryHostIndex is the registry's host number on the Network's /24:
// below the nodes (.11 up), the NAT routers (.201 up) and the host (.254).
const registryHostIndex = 5

// RegistryBinary is the distribution registry: $MONOKUBE_REGISTRY_BIN, or
// build/test-tools/docker-registry at the repository root (make test-tools).
func RegistryBinary(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("MONOKUBE_REGISTRY_BIN"); bin != "" {
		return bin
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for dir := wd; dir != "/"; dir = filepath.Dir(dir) {
		if candidate := filepath.Join(dir, "build", "test-tools", "docker-registry"); fileExists(candidate) {
			return candidate
		}
	}
	t.Fatal("docker-registry not found: run `make test-tools` or set MONOKUBE_REGISTRY_BIN")
	return ""
}

// StartRegistry gives the registry a machine on network, starts it and
// waits until it answers; it is stopped and its machine removed when the
// test ends. One registry per Network.
func StartRegistry(t testing.TB, network *Network, opts RegistryOptions) *Registry {
	t.Helper()
	if opts.Username == "" {
		opts.Username = "monokube"
	}
	if opts.Password == "" {
		raw := make([]byte, 12)
		_, _ = rand.Read(raw)
		opts.Password = hex.EncodeToString(raw)
	}
	if opts.DNSName == "" {
		opts.DNSName = "registry.test"
	}
	dir := t.TempDir()
	r := &Registry{
		IP:         fmt.Sprintf("%s.%d", network.Subnet, registryHostIndex),
		DNSName:    opts.DNSName,
		CAFile:     filepath.Join(dir, "ca.crt"),
		Username:   opts.Username,
		Password:   opts.Password,
		NetNS:      "mk" + network.ID + "reg",
		bin:        RegistryBinary(t),
		configPath: filepath.Join(dir, "config.yml"),
		logPath:    filepath.Join(dir, "registry.log"),
		t:          t,
	}
	r.Host = net.JoinHostPort(r.IP, fmt.Sprint(RegistryPort))
	t.Cleanup(func() {
		r.Stop()
		if t.Failed() {
			raw, _ := os.ReadFile(r.logPath)
			t.Logf("--- registry log %s ---\n%s", r.logPath, raw)
		}
		// The veth goes with the namespace.
		if out, err := exec.Command("ip", "netns", "del", r.NetNS).CombinedOutput(); err != nil {
			t.Errorf("registry teardown: ip netns del %s: %v: %s", r.NetNS, err, out)
		}
	})

	// A machine on the segment, as a node is; its default route leads to
	// the bridge namespace, which has no uplink.
	network.must("ip", "netns", "add", r.NetNS)
	veth := "mk" + network.ID + "rg"
	network.must("ip", "link", "add", "eth0", "netns", r.NetNS, "type", "veth", "peer", "name", veth, "netns", network.bridge)
	network.must("ip", "-n", network.bridge, "link", "set", veth, "master", "br0", "up")
	network.must("ip", "-n", r.NetNS, "link", "set", "lo", "up")
	network.must("ip", "-n", r.NetNS, "addr", "add", r.IP+"/24", "dev", "eth0")
	network.must("ip", "-n", r.NetNS, "link", "set", "eth0", "up")
	network.must("ip", "-n", r.NetNS, "route", "add", "default", "via", network.Subnet+".1")

	r.writeFiles(dir)
	r.Start()
	return r
}

// writeFiles writes the CA, the serving pair, the htpasswd file and the
// registry's config into dir.
func (r *Registry) writeFiles(dir string) {
	r.t.Helper()
	ca, err := pki.LoadOrCreateAuthority(dir, "ca", "monokube test registry CA")
	if err != nil {
		r.t.Fatalf("registry CA: %v", err)
	}
	certPEM, keyPEM, err := ca.Issue(pki.Leaf{
		Name: "registry", CommonName: r.DNSName, DNSNames: []string{r.DNSName},
		IPs: []net.IP{net.ParseIP(r.IP)}, Server: true, Validity: 24 * time.Hour,
	})
	if err != nil {
		r.t.Fatalf("registry certificate: %v", err)
	}
	r.CAPEM = ca.CertPEM
	r.roots = x509.NewCertPool()
	r.roots.AppendCertsFromPEM(r.CAPEM)

	// The registry checks the password of every request against the hash:
	// at bcrypt's default cost that is about 50 ms a request, which would
	// show in pull times. It accepts any cost.
	hash, err := bcrypt.GenerateFromPassword([]byte(r.Password), bcrypt.MinCost)
	if err != nil {
		r.t.Fatal(err)
	}
	secret := make([]byte, 16)
	_, _ = rand.Read(secret)
	files := map[string]string{
		"registry.crt": string(certPEM),
		"registry.key": string(keyPEM),
		"htpasswd":     r.Username + ":" + string(hash) + "\n",
		"config.yml": fmt.Sprintf(`version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: %s
  tls:
    certificate: %s
    key: %s
auth:
  htpasswd:
    realm: monokube-test-registry
    path: %s
`, filepath.Join(dir, "storage"), r.Host, hex.EncodeToString(secret),
			filepath.Join(dir, "registry.crt"), filepath.Join(dir, "registry.key"), filepath.Join(dir, "htpasswd")),
	}
	for file, content := range files {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(content), 0o600); err != nil {
			r.t.Fatal(err)
		}
	}
}

// Start runs the registry in its namespace, logging to its log file, and
// waits until it answers /v2/ (with 401: it wants a password).
func (r *Registry) Start() {
	r.t.Helper()
	if r.cmd != nil && !r.Exited() {
		r.t.Fatal("registry: Start while it runs")
	}
	logFile, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		r.t.Fatal(err)
	}
	defer logFile.Close()
	// nsenter execs the registry: the process we wait for and kill is it.
	r.cmd = exec.Command("nsenter", "--net=/run/netns/"+r.NetNS, "--", r.bin, "serve", r.configPath)
	r.cmd.Stdout, r.cmd.Stderr = logFile, logFile
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start registry: %v", err)
	}
	rememberProcess(r.cmd.Process.Pid)
	exited := make(chan struct{})
	r.exited = exited
	cmd := r.cmd
	go func() {
		r.exitErr = cmd.Wait()
		close(exited)
	}()
	client := &http.Client{Transport: r.Transport(), Timeout: 2 * time.Second}
	ready := PollOK(30*time.Second, func(ctx context.Context) (bool, error) {
		if r.Exited() {
			return false, fmt.Errorf("registry exited")
		}
		resp, err := client.Get("https://" + r.Host + "/v2/")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusUnauthorized, nil
	})
	if !ready {
		raw, _ := os.ReadFile(r.logPath)
		if r.Exited() {
			r.t.Fatalf("registry exited: %v\n%s", r.exitErr, raw)
		}
		r.t.Fatalf("registry at %s did not answer within 30s\n%s", r.Host, raw)
	}
}

// Stop kills the registry (by its process id) and waits for it to exit;
// nothing if it is not running. Start runs it again on the same storage.
func (r *Registry) Stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	<-r.exited
}

// Exited reports whether the registry started last has ended.
func (r *Registry) Exited() bool {
	select {
	case <-r.exited:
		return true
	default:
		return false
	}
}

// Log is the registry's log so far, over every Start.
func (r *Registry) Log() string {
	raw, _ := os.ReadFile(r.logPath)
	return string(raw)
}

// Transport is an HTTP transport that trusts the registry's CA and no other.
func (r *Registry) Transport() *http.Transport {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil // the registry is on the test network, never behind a proxy
	transport.TLSClientConfig = &tls.Config{RootCAs: r.roots}
	return transport
}

// RemoteOptions are go-containerregistry's options to talk to the registry
// as its user.
func (r *Registry) RemoteOptions() []remote.Option {
	return []remote.Option{
		remote.WithAuth(&authn.Basic{Username: r.Username, Password: r.Password}),
		remote.WithTransport(r.Transport()),
	}
}

// Reference is repository:tag (or @digest) in this registry:
// "Host/repository:tag".
func (r *Registry) Reference(repositoryTag string) string {
	return r.Host + "/" + strings.TrimPrefix(repositoryTag, "/")
}

// Push writes image to repositoryTag ("test/sleep:1") in the registry as
// its user and returns the full reference nodes pull ("Host/test/sleep:1").
func (r *Registry) Push(t testing.TB, repositoryTag string, image v1.Image) string {
	t.Helper()
	reference := r.Reference(repositoryTag)
	ref, err := name.ParseReference(reference)
	if err != nil {
		t.Fatalf("registry push: %v", err)
	}
	if err := remote.Write(ref, image, r.RemoteOptions()...); err != nil {
		t.Fatalf("registry push %s: %v", reference, err)
	}
	return reference
}
