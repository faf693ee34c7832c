package pki

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

func testRequest(t *testing.T) ServerRequest {
	t.Helper()
	return ServerRequest{
		// A directory EnsureServer has to create, so its mode is its own doing.
		Dir:         filepath.Join(t.TempDir(), "pki"),
		ClusterName: "monokube",
		LocalURL:    "https://127.0.0.1:6443",
		APIServerDNSNames: []string{
			"kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local", "localhost", "node-1",
		},
		APIServerIPs: []net.IP{
			net.ParseIP("127.0.0.1"), net.ParseIP("10.43.0.1"), net.ParseIP("192.168.1.10"),
		},
	}
}

func ensureServer(t *testing.T, req ServerRequest) Files {
	t.Helper()
	files, err := EnsureServer(req)
	if err != nil {
		t.Fatalf("EnsureServer: %v", err)
	}
	return files
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s holds no PEM certificate", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return c
}

func certPool(t *testing.T, path string) *x509.CertPool {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(readCert(t, path))
	return pool
}

// snapshot returns the contents of every file in dir.
// changedFiles lists, sorted, the files of two snapshots that were added,
// removed or rewritten with other content.
func changedFiles(before, after map[string][]byte) []string {
	var changed []string
	for name, content := range after {
		if old, ok := before[name]; !ok || !bytes.Equal(old, content) {
			changed = append(changed, name)
		}
	}
	for name := range before {
		if _, ok := after[name]; !ok {
			changed = append(changed, name)
		}
	}
	slices.Sort(changed)
	return changed
}

func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = raw
	}
	return out
}

func TestEnsureServerCreatesEveryFileWithPrivateModes(t *testing.T) {
	req := testRequest(t)
	ensureServer(t, req)

	want := []string{
		"ca.crt", "ca.key", "ca-signing.crt",
		"front-proxy-ca.crt", "front-proxy-ca.key",
		"sa.key", "sa.pub",
		"apiserver.crt", "apiserver.key", "apiserver.pem",
		"apiserver-kubelet-client.crt", "apiserver-kubelet-client.key", "apiserver-kubelet-client.pem",
		"front-proxy-client.crt", "front-proxy-client.key", "front-proxy-client.pem",
		"controller-manager.crt", "controller-manager.key", "controller-manager.pem", "controller-manager.conf",
		"scheduler.crt", "scheduler.key", "scheduler.pem", "scheduler.conf",
		"admin.crt", "admin.key", "admin.pem", "admin.conf", "monokube.conf",
	}
	entries, err := os.ReadDir(req.Dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("files in %s:\n got  %v\n want %v", req.Dir, got, want)
	}

	info, err := os.Stat(req.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o700 {
		t.Errorf("%s mode = %o, want 700", req.Dir, mode)
	}
	for _, name := range got {
		if !strings.HasSuffix(name, ".key") && !strings.HasSuffix(name, ".conf") && !strings.HasSuffix(name, ".pem") {
			continue
		}
		info, err := os.Stat(filepath.Join(req.Dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if mode := info.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s mode = %o, want 600", name, mode)
		}
	}
}

func TestEnsureServerRestrictsAnExistingDir(t *testing.T) {
	req := testRequest(t)
	if err := os.MkdirAll(req.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(req.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ensureServer(t, req)
	info, err := os.Stat(req.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if mode := info.Mode().Perm(); mode != 0o700 {
		t.Errorf("%s mode = %o, want 700", req.Dir, mode)
	}
}

func TestAPIServerCertificateHasEveryRequestedSANAndVerifies(t *testing.T) {
	req := testRequest(t)
	files := ensureServer(t, req)
	leaf := readCert(t, files.Cert(APIServer))

	for _, name := range req.APIServerDNSNames {
		if !slices.Contains(leaf.DNSNames, name) {
			t.Errorf("DNS SANs %v lack %q", leaf.DNSNames, name)
		}
	}
	for _, ip := range req.APIServerIPs {
		if !slices.ContainsFunc(leaf.IPAddresses, ip.Equal) {
			t.Errorf("IP SANs %v lack %s", leaf.IPAddresses, ip)
		}
	}
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		t.Errorf("ExtKeyUsage = %v, want ServerAuth", leaf.ExtKeyUsage)
	}
	if leaf.Subject.CommonName != "kube-apiserver" {
		t.Errorf("CN = %q, want kube-apiserver", leaf.Subject.CommonName)
	}

	roots := certPool(t, files.CACert())
	for _, name := range []string{"kubernetes.default.svc", "localhost", "127.0.0.1", "10.43.0.1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: name}); err != nil {
			t.Errorf("Verify(%s) against ca.crt: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "not-requested.example.com"}); err == nil {
		t.Error("Verify accepted a name that was not requested")
	}
	// The front-proxy CA is a different CA: it must not vouch for the API server.
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: certPool(t, files.FrontProxyCACert())}); err == nil {
		t.Error("apiserver certificate verified against the front-proxy CA")
	}
}

func TestLeafCertificatesHaveTheirSubjectAndUsage(t *testing.T) {
	files := ensureServer(t, testRequest(t))
	tests := []struct {
		leaf   string
		ca     string
		cn     string
		orgs   []string
		usages []x509.ExtKeyUsage
	}{
		{APIServer, files.CACert(), "kube-apiserver", nil, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}},
		{APIServerKubeletClient, files.CACert(), "kube-apiserver-kubelet-client", []string{"system:masters"}, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		{FrontProxyClient, files.FrontProxyCACert(), "front-proxy-client", nil, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		{ControllerManager, files.CACert(), "system:kube-controller-manager", nil, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		{Scheduler, files.CACert(), "system:kube-scheduler", nil, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
		{Admin, files.CACert(), "admin", []string{"system:masters"}, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}},
	}
	for _, tt := range tests {
		t.Run(tt.leaf, func(t *testing.T) {
			c := readCert(t, files.Cert(tt.leaf))
			if c.Subject.CommonName != tt.cn {
				t.Errorf("CN = %q, want %q", c.Subject.CommonName, tt.cn)
			}
			if !slices.Equal(c.Subject.Organization, tt.orgs) {
				t.Errorf("O = %v, want %v", c.Subject.Organization, tt.orgs)
			}
			if !slices.Equal(c.ExtKeyUsage, tt.usages) {
				t.Errorf("ExtKeyUsage = %v, want %v", c.ExtKeyUsage, tt.usages)
			}
			if c.IsCA {
				t.Error("leaf certificate is a CA")
			}
			if _, err := c.Verify(x509.VerifyOptions{Roots: certPool(t, tt.ca), KeyUsages: tt.usages}); err != nil {
				t.Errorf("Verify against its CA: %v", err)
			}
			// The whole validity lies ahead of the moment of issue.
			if ahead := time.Until(c.NotAfter); ahead < DefaultLeafValidity-time.Minute || ahead > DefaultLeafValidity {
				t.Errorf("valid for %s more, want %s", ahead, DefaultLeafValidity)
			}
			// The key on disk belongs to the certificate on disk.
			if _, err := tls.LoadX509KeyPair(files.Cert(tt.leaf), files.Key(tt.leaf)); err != nil {
				t.Errorf("key does not match certificate: %v", err)
			}
		})
	}
}

func TestCertificateAuthoritiesAreTenYearCAs(t *testing.T) {
	files := ensureServer(t, testRequest(t))
	tests := []struct {
		path string
		cn   string
	}{
		{files.CACert(), "kubernetes-ca"},
		{files.FrontProxyCACert(), "kubernetes-front-proxy-ca"},
	}
	for _, tt := range tests {
		t.Run(tt.cn, func(t *testing.T) {
			ca := readCert(t, tt.path)
			if ca.Subject.CommonName != tt.cn {
				t.Errorf("CN = %q, want %q", ca.Subject.CommonName, tt.cn)
			}
			if !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
				t.Errorf("IsCA = %v, KeyUsage = %v, want a signing CA", ca.IsCA, ca.KeyUsage)
			}
			tenYears := 10 * 365 * 24 * time.Hour
			if lifetime := ca.NotAfter.Sub(ca.NotBefore); lifetime < tenYears-time.Hour || lifetime > tenYears+time.Hour {
				t.Errorf("lifetime = %s, want about ten years", lifetime)
			}
			if time.Since(ca.NotBefore) < 0 || time.Since(ca.NotBefore) > time.Minute {
				t.Errorf("NotBefore = %s, want about now", ca.NotBefore)
			}
		})
	}
}

func TestServiceAccountKeyPairMatches(t *testing.T) {
	files := ensureServer(t, testRequest(t))
	keyPEM, err := os.ReadFile(files.ServiceAccountKey())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := os.ReadFile(files.ServiceAccountPub())
	if err != nil {
		t.Fatal(err)
	}
	keyBlock, _ := pem.Decode(keyPEM)
	pubBlock, _ := pem.Decode(pubPEM)
	if keyBlock == nil || pubBlock == nil || pubBlock.Type != "PUBLIC KEY" {
		t.Fatalf("sa.key/sa.pub are not PEM keys:\n%s\n%s", keyPEM, pubPEM)
	}
	key, err := x509.ParseECPrivateKey(keyBlock.Bytes)
	if err != nil {
		t.Fatalf("parse sa.key: %v", err)
	}
	pub, err := x509.ParsePKIXPublicKey(pubBlock.Bytes)
	if err != nil {
		t.Fatalf("parse sa.pub: %v", err)
	}
	if !key.PublicKey.Equal(pub) {
		t.Error("sa.pub is not the public half of sa.key")
	}
}

func TestEnsureServiceAccountKeyRestoresMissingPublicKey(t *testing.T) {
	dir := t.TempDir()
	if err := EnsureServiceAccountKey(dir); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	if err := os.Remove(filepath.Join(dir, "sa.pub")); err != nil {
		t.Fatal(err)
	}
	if err := EnsureServiceAccountKey(dir); err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, dir)
	for _, name := range []string{"sa.key", "sa.pub"} {
		if !bytes.Equal(before[name], after[name]) {
			t.Errorf("%s changed; the key must be kept and the same public key derived", name)
		}
	}
}

func TestEnsureServerTwiceReusesEveryFile(t *testing.T) {
	req := testRequest(t)
	ensureServer(t, req)
	before := snapshot(t, req.Dir)
	ensureServer(t, req)
	after := snapshot(t, req.Dir)

	if changed := changedFiles(before, after); len(changed) > 0 {
		t.Errorf("second run changed %v", changed)
	}
}

func TestEnsureServerReissuesAPIServerCertForNewSAN(t *testing.T) {
	req := testRequest(t)
	files := ensureServer(t, req)
	before := snapshot(t, req.Dir)

	newIP := net.ParseIP("203.0.113.7")
	req.APIServerIPs = append(slices.Clone(req.APIServerIPs), newIP)
	ensureServer(t, req)
	after := snapshot(t, req.Dir)

	if changed := changedFiles(before, after); !slices.Equal(changed, []string{"apiserver.crt", "apiserver.key", "apiserver.pem"}) {
		t.Errorf("changed %v, want only the apiserver certificate (and its chain) and key re-issued for the new IP SAN", changed)
	}

	leaf := readCert(t, files.Cert(APIServer))
	if !slices.ContainsFunc(leaf.IPAddresses, newIP.Equal) {
		t.Errorf("re-issued IP SANs %v lack %s", leaf.IPAddresses, newIP)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(before["ca.crt"]) {
		t.Fatal("cannot parse the original ca.crt")
	}
	for _, name := range []string{"kubernetes.default.svc", newIP.String()} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: name}); err != nil {
			t.Errorf("re-issued certificate does not verify for %s with the original CA: %v", name, err)
		}
	}
}

func TestEnsureServerRewritesKubeconfigsForNewLocalURL(t *testing.T) {
	req := testRequest(t)
	files := ensureServer(t, req)
	before := snapshot(t, req.Dir)

	req.LocalURL = "https://127.0.0.1:7443"
	ensureServer(t, req)
	after := snapshot(t, req.Dir)

	for _, leaf := range []string{ControllerManager, Scheduler, Admin} {
		config, err := clientcmd.LoadFromFile(files.Kubeconfig(leaf))
		if err != nil {
			t.Fatal(err)
		}
		if len(config.Clusters) == 0 {
			t.Errorf("%s kubeconfig has no cluster: nothing to check the server of", leaf)
		}
		for name, cluster := range config.Clusters {
			if cluster.Server != req.LocalURL {
				t.Errorf("%s cluster %q server = %q, want %q", leaf, name, cluster.Server, req.LocalURL)
			}
		}
		if !bytes.Equal(before[leaf+".crt"], after[leaf+".crt"]) {
			t.Errorf("%s.crt was re-issued; only the kubeconfig had to change", leaf)
		}
	}
}

func newTestAuthority(t *testing.T, dir string) *Authority {
	t.Helper()
	ca, err := LoadOrCreateAuthority(dir, "ca", "test-ca")
	if err != nil {
		t.Fatalf("LoadOrCreateAuthority: %v", err)
	}
	return ca
}

func TestEnsureRenewsOnlyLeavesCloseToExpiry(t *testing.T) {
	tests := []struct {
		name     string
		validity time.Duration
		percent  int
		reissue  bool
	}{
		// Issuing backdates NotBefore by a tenth of the validity (five
		// minutes at most) and keeps the full validity ahead, so a fresh
		// 1m leaf has 60s of its 66s lifetime left: 91%.
		{"less left than the renewal share", time.Minute, 95, true},
		{"more left than the renewal share", time.Minute, 85, false},
		// A short leaf is not mostly past when issued.
		{"short leaf, default share", 2 * time.Minute, 0, false},
		{"default one-year leaf", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			ca := newTestAuthority(t, dir)
			leaf := Leaf{Name: "leaf", CommonName: "leaf", Client: true, Validity: tt.validity, RenewPercentLeft: tt.percent}

			issued, err := ca.Ensure(dir, leaf)
			if err != nil || !issued {
				t.Fatalf("first Ensure = %v, %v; want issued", issued, err)
			}
			first, err := os.ReadFile(filepath.Join(dir, "leaf.crt"))
			if err != nil {
				t.Fatal(err)
			}
			issued, err = ca.Ensure(dir, leaf)
			if err != nil {
				t.Fatal(err)
			}
			second, err := os.ReadFile(filepath.Join(dir, "leaf.crt"))
			if err != nil {
				t.Fatal(err)
			}
			if issued != tt.reissue {
				t.Errorf("second Ensure issued = %v, want %v", issued, tt.reissue)
			}
			if changed := !bytes.Equal(first, second); changed != tt.reissue {
				t.Errorf("leaf.crt changed = %v, want %v", changed, tt.reissue)
			}
		})
	}
}

func TestEnsureReissuesLeafThatNoLongerFits(t *testing.T) {
	base := Leaf{
		Name:          "leaf",
		CommonName:    "kube-apiserver",
		Organizations: []string{"org"},
		DNSNames:      []string{"a.example.com"},
		IPs:           []net.IP{net.ParseIP("10.0.0.1")},
		Server:        true,
	}
	tests := []struct {
		name    string
		change  func(t *testing.T, dir string, leaf *Leaf)
		reissue bool
	}{
		{"nothing changed", func(*testing.T, string, *Leaf) {}, false},
		{"a name already in the certificate is no longer requested", func(_ *testing.T, _ string, l *Leaf) { l.DNSNames = nil }, false},
		{"new DNS name", func(_ *testing.T, _ string, l *Leaf) { l.DNSNames = append(l.DNSNames, "b.example.com") }, true},
		{"new IP", func(_ *testing.T, _ string, l *Leaf) { l.IPs = append(l.IPs, net.ParseIP("10.0.0.2")) }, true},
		{"new common name", func(_ *testing.T, _ string, l *Leaf) { l.CommonName = "other" }, true},
		{"new organization", func(_ *testing.T, _ string, l *Leaf) { l.Organizations = []string{"system:masters"} }, true},
		{"key file missing", func(t *testing.T, dir string, _ *Leaf) {
			if err := os.Remove(filepath.Join(dir, "leaf.key")); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"certificate unreadable", func(t *testing.T, dir string, _ *Leaf) {
			if err := os.WriteFile(filepath.Join(dir, "leaf.crt"), []byte("garbage"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"signed by another CA", func(t *testing.T, dir string, l *Leaf) {
			other := newTestAuthority(t, t.TempDir())
			certPEM, keyPEM, err := other.Issue(*l)
			if err != nil {
				t.Fatal(err)
			}
			if err := writeFiles(filepath.Join(dir, "leaf.crt"), filepath.Join(dir, "leaf.key"), certPEM, keyPEM); err != nil {
				t.Fatal(err)
			}
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			ca := newTestAuthority(t, dir)
			leaf := base
			leaf.DNSNames = slices.Clone(base.DNSNames)
			leaf.IPs = slices.Clone(base.IPs)
			if _, err := ca.Ensure(dir, leaf); err != nil {
				t.Fatal(err)
			}
			tt.change(t, dir, &leaf)
			issued, err := ca.Ensure(dir, leaf)
			if err != nil {
				t.Fatal(err)
			}
			if issued != tt.reissue {
				t.Errorf("Ensure issued = %v, want %v", issued, tt.reissue)
			}
			c := readCert(t, filepath.Join(dir, "leaf.crt"))
			if err := c.CheckSignatureFrom(ca.Cert); err != nil {
				t.Errorf("leaf on disk is not signed by the CA: %v", err)
			}
			if c.Subject.CommonName != leaf.CommonName {
				t.Errorf("CN on disk = %q, want %q", c.Subject.CommonName, leaf.CommonName)
			}
		})
	}
}

func TestLoadOrCreateAuthorityReusesExistingCA(t *testing.T) {
	dir := t.TempDir()
	first := newTestAuthority(t, dir)
	second, err := LoadOrCreateAuthority(dir, "ca", "another-name")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.CertPEM, second.CertPEM) || !first.Cert.Equal(second.Cert) {
		t.Error("second LoadOrCreateAuthority created a new CA instead of loading the existing one")
	}
	// The loaded key still signs certificates the original CA verifies.
	certPEM, _, err := second.Issue(Leaf{Name: "x", CommonName: "x", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CheckSignatureFrom(first.Cert); err != nil {
		t.Errorf("certificate from the loaded CA does not verify with the original: %v", err)
	}
}

func TestLoadOrCreateAuthorityRefusesHalfAPair(t *testing.T) {
	for _, missing := range []string{"ca.key", "ca.crt"} {
		t.Run(missing+" missing", func(t *testing.T) {
			dir := t.TempDir()
			newTestAuthority(t, dir)
			if err := os.Remove(filepath.Join(dir, missing)); err != nil {
				t.Fatal(err)
			}
			before := snapshot(t, dir)

			_, err := LoadOrCreateAuthority(dir, "ca", "test-ca")
			if err == nil {
				t.Fatal("LoadOrCreateAuthority accepted half a CA")
			}
			for _, path := range []string{filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")} {
				if !strings.Contains(err.Error(), path) {
					t.Errorf("error %q does not mention %s", err, path)
				}
			}
			if changed := changedFiles(before, snapshot(t, dir)); len(changed) > 0 {
				t.Errorf("files created or overwritten: %v", changed)
			}
		})
	}
}

func TestEnsureServerRefusesHalfACA(t *testing.T) {
	req := testRequest(t)
	files := ensureServer(t, req)
	if err := os.Remove(files.CAKey()); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, req.Dir)
	if _, err := EnsureServer(req); err == nil {
		t.Fatal("EnsureServer went on without ca.key")
	}
	if changed := changedFiles(before, snapshot(t, req.Dir)); len(changed) > 0 {
		t.Errorf("%v changed although the CA was incomplete", changed)
	}
}

func TestAdminKubeconfigPointsAtLocalURL(t *testing.T) {
	req := testRequest(t)
	files := ensureServer(t, req)

	config, err := clientcmd.LoadFromFile(files.AdminKubeconfig())
	if err != nil {
		t.Fatalf("load admin.conf: %v", err)
	}
	context, ok := config.Contexts[config.CurrentContext]
	if !ok {
		t.Fatalf("current context %q is not defined", config.CurrentContext)
	}
	cluster, ok := config.Clusters[context.Cluster]
	if !ok {
		t.Fatalf("cluster %q is not defined", context.Cluster)
	}
	if context.Cluster != req.ClusterName {
		t.Errorf("cluster name = %q, want %q", context.Cluster, req.ClusterName)
	}
	if cluster.Server != req.LocalURL {
		t.Errorf("server = %q, want %q", cluster.Server, req.LocalURL)
	}
	caPEM, err := os.ReadFile(files.CACert())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cluster.CertificateAuthorityData, caPEM) {
		t.Error("certificate-authority-data is not ca.crt")
	}
	user, ok := config.AuthInfos[context.AuthInfo]
	if !ok {
		t.Fatalf("user %q is not defined", context.AuthInfo)
	}
	pair, err := tls.X509KeyPair(user.ClientCertificateData, user.ClientKeyData)
	if err != nil {
		t.Fatalf("client certificate and key do not match: %v", err)
	}
	if cn := pair.Leaf.Subject.CommonName; cn != "admin" {
		t.Errorf("client CN = %q, want admin", cn)
	}
	if orgs := pair.Leaf.Subject.Organization; !slices.Equal(orgs, []string{"system:masters"}) {
		t.Errorf("client O = %v, want [system:masters]", orgs)
	}
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{
		Roots:     certPool(t, files.CACert()),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		t.Errorf("admin client certificate does not verify for client auth: %v", err)
	}
	if _, err := clientcmd.RESTConfigFromKubeConfig(mustRead(t, files.AdminKubeconfig())); err != nil {
		t.Errorf("admin.conf does not make a REST config: %v", err)
	}
}

func TestWithServerReplacesServer(t *testing.T) {
	files := ensureServer(t, testRequest(t))
	onDisk := mustRead(t, files.AdminKubeconfig())

	const server = "https://192.168.1.10:6443"
	out, err := WithServer(files.AdminKubeconfig(), server)
	if err != nil {
		t.Fatal(err)
	}
	config, err := clientcmd.Load(out)
	if err != nil {
		t.Fatalf("load WithServer output: %v", err)
	}
	if len(config.Clusters) == 0 {
		t.Fatal("no clusters in WithServer output")
	}
	for name, cluster := range config.Clusters {
		if cluster.Server != server {
			t.Errorf("cluster %q server = %q, want %q", name, cluster.Server, server)
		}
	}
	original, err := clientcmd.Load(onDisk)
	if err != nil {
		t.Fatal(err)
	}
	if len(original.AuthInfos) == 0 {
		t.Error("admin.conf has no user: nothing to compare the credentials of")
	}
	for name, user := range original.AuthInfos {
		if !bytes.Equal(config.AuthInfos[name].ClientCertificateData, user.ClientCertificateData) {
			t.Errorf("user %q credentials changed", name)
		}
	}
	if !bytes.Equal(onDisk, mustRead(t, files.AdminKubeconfig())) {
		t.Error("WithServer modified admin.conf on disk")
	}
}

func TestWithServerMissingFile(t *testing.T) {
	if _, err := WithServer(filepath.Join(t.TempDir(), "absent.conf"), "https://x:6443"); err == nil {
		t.Error("WithServer of a missing file succeeded")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestComponentKubeconfigsNameTheirFilesAndAdminEmbedsThem(t *testing.T) {
	req := testRequest(t)
	files := ensureServer(t, req)
	byFile := map[string]string{
		files.Kubeconfig(ControllerManager): ControllerManager,
		files.Kubeconfig(Scheduler):         Scheduler,
		files.SelfKubeconfig():              Admin,
	}
	for path, leaf := range byFile {
		config, err := clientcmd.LoadFromFile(path)
		if err != nil {
			t.Fatal(err)
		}
		user := config.AuthInfos[config.Contexts[config.CurrentContext].AuthInfo]
		if user.ClientCertificate != files.Pair(leaf) || user.ClientKey != files.Pair(leaf) || len(user.ClientCertificateData) > 0 {
			t.Errorf("%s: user = %s/%s (embedded %d bytes), want the files of %s so a renewal is re-read",
				filepath.Base(path), user.ClientCertificate, user.ClientKey, len(user.ClientCertificateData), leaf)
		}
		cluster := config.Clusters[config.Contexts[config.CurrentContext].Cluster]
		if cluster.CertificateAuthority != files.CACert() {
			t.Errorf("%s: CA = %q, want %s", filepath.Base(path), cluster.CertificateAuthority, files.CACert())
		}
	}
	admin, err := clientcmd.LoadFromFile(files.AdminKubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	if user := admin.AuthInfos[Admin]; user == nil || len(user.ClientCertificateData) == 0 || user.ClientCertificate != "" {
		t.Errorf("admin.conf user = %+v, want the certificate embedded: users copy it", user)
	}
}

func TestRenewedAdminCertificateRewritesAdminKubeconfig(t *testing.T) {
	req := testRequest(t)
	files := ensureServer(t, req)
	before := mustRead(t, files.AdminKubeconfig())
	selfBefore := mustRead(t, files.SelfKubeconfig())
	if err := os.Remove(files.Cert(Admin)); err != nil {
		t.Fatal(err)
	}
	ensureServer(t, req)
	if bytes.Equal(before, mustRead(t, files.AdminKubeconfig())) {
		t.Error("admin.conf still embeds the old certificate")
	}
	if !bytes.Equal(selfBefore, mustRead(t, files.SelfKubeconfig())) {
		t.Error("monokube.conf changed; it names files and had no reason to")
	}
}

func TestWithServerEmbedsFileCredentials(t *testing.T) {
	files := ensureServer(t, testRequest(t))
	out, err := WithServer(files.SelfKubeconfig(), "https://192.168.1.10:6443")
	if err != nil {
		t.Fatal(err)
	}
	config, err := clientcmd.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	for name, user := range config.AuthInfos {
		if user.ClientCertificate != "" || !bytes.Contains(user.ClientCertificateData, mustRead(t, files.Cert(Admin))) {
			t.Errorf("user %q: file %q, %d embedded bytes; want the certificate embedded", name, user.ClientCertificate, len(user.ClientCertificateData))
		}
	}
}

func TestCheckIntervalIsAnEighthOfTheMarginWithinBounds(t *testing.T) {
	tests := []struct {
		validity time.Duration
		percent  int
		want     time.Duration
	}{
		{0, 0, 5 * time.Minute},                        // a year, 20%: capped at upstream's 5 min
		{2 * time.Minute, 50, 7500 * time.Millisecond}, // 60 s margin
		{time.Minute, 1, time.Second},                  // floor
	}
	for _, tt := range tests {
		if got := CheckInterval(tt.validity, tt.percent); got != tt.want {
			t.Errorf("CheckInterval(%s, %d) = %s, want %s", tt.validity, tt.percent, got, tt.want)
		}
	}
}
