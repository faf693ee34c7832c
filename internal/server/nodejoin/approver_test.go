package nodejoin

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"net"
	"testing"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/monokube/monokube/internal/join"
)

// csrSpec is one certificate request as a requester would send it.
type csrSpec struct {
	username string
	groups   []string
	signer   string
	usages   []certificatesv1.KeyUsage
	subject  pkix.Name
	dnsNames []string
	ips      []net.IP
}

var (
	nodeGroups      = []string{"system:nodes", "system:authenticated"}
	bootstrapGroups = []string{join.BootstrapGroup(join.RoleWorker), "system:bootstrappers", "system:authenticated"}
	clientUsages    = []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}
	servingUsages   = []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth}
	nodeSubject     = func(name string) pkix.Name {
		return pkix.Name{CommonName: join.NodeUserPrefix + name, Organization: []string{"system:nodes"}}
	}
)

func (c csrSpec) object(t *testing.T) *certificatesv1.CertificateSigningRequest {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: c.subject, DNSNames: c.dnsNames, IPAddresses: c.ips}, key)
	if err != nil {
		t.Fatal(err)
	}
	return &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: "csr-test"},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName: c.signer, Usages: c.usages, Username: c.username, Groups: c.groups,
		},
	}
}

// approverWithNodes has a Node lister over an in-memory store holding nodes,
// the same lister type the running approver reads from its informer.
func approverWithNodes(t *testing.T, nodes ...*corev1.Node) *Approver {
	t.Helper()
	store := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, node := range nodes {
		if err := store.Add(node); err != nil {
			t.Fatal(err)
		}
	}
	return &Approver{nodes: corelisters.NewNodeLister(store)}
}

func workerNode() *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "w1"},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: "10.0.0.11"},
			{Type: corev1.NodeHostName, Address: "w1"},
		}},
	}
}

type want int

const (
	approve want = iota
	deny
	notOurs
	notYet
	claim
)

func (w want) String() string {
	return [...]string{"approve", "deny", "leave pending", "look again later", "approve if the name's password matches"}[w]
}

func outcome(r review) want {
	switch {
	case !r.ours:
		return notOurs
	case errors.Is(r.verdict, errNotYet):
		return notYet
	case r.verdict != nil:
		return deny
	case r.claim != nil:
		return claim
	}
	return approve
}

func TestApproverDecisions(t *testing.T) {
	kubeletClient := certificatesv1.KubeAPIServerClientKubeletSignerName
	serving := certificatesv1.KubeletServingSignerName
	apiClient := certificatesv1.KubeAPIServerClientSignerName
	cases := map[string]struct {
		csr  csrSpec
		want want
	}{
		// Kubelet client certificates.
		"bootstrap token joins a node": {
			csrSpec{username: "system:bootstrap:abcdef", groups: bootstrapGroups, signer: kubeletClient, usages: clientUsages, subject: nodeSubject("w1")}, claim},
		"bootstrap token asks for a non-node identity": {
			csrSpec{username: "system:bootstrap:abcdef", groups: bootstrapGroups, signer: kubeletClient, usages: clientUsages,
				subject: pkix.Name{CommonName: "admin", Organization: []string{"system:masters"}}}, deny},
		"bootstrap token asks for serving usage on a client certificate": {
			csrSpec{username: "system:bootstrap:abcdef", groups: bootstrapGroups, signer: kubeletClient,
				usages: append(clientUsages, certificatesv1.UsageServerAuth), subject: nodeSubject("w1")}, deny},
		"node renews its own client certificate": {
			csrSpec{username: "system:node:w1", groups: nodeGroups, signer: kubeletClient, usages: clientUsages, subject: nodeSubject("w1")}, approve},
		"node asks for another node's client certificate": {
			csrSpec{username: "system:node:w1", groups: nodeGroups, signer: kubeletClient, usages: clientUsages, subject: nodeSubject("w2")}, deny},
		"a user asks for a node client certificate": {
			csrSpec{username: "alice", groups: []string{"system:authenticated"}, signer: kubeletClient, usages: clientUsages, subject: nodeSubject("w1")}, notOurs},
		"a node name without the nodes group": {
			csrSpec{username: "system:node:w1", groups: []string{"system:authenticated"}, signer: kubeletClient, usages: clientUsages, subject: nodeSubject("w1")}, notOurs},

		// Kubelet serving certificates.
		"node asks for its own names and addresses": {
			csrSpec{username: "system:node:w1", groups: nodeGroups, signer: serving, usages: servingUsages, subject: nodeSubject("w1"),
				dnsNames: []string{"w1"}, ips: []net.IP{net.ParseIP("10.0.0.11")}}, approve},
		"node adds a name it does not have": {
			csrSpec{username: "system:node:w1", groups: nodeGroups, signer: serving, usages: servingUsages, subject: nodeSubject("w1"),
				dnsNames: []string{"w1", "kubernetes.default"}}, deny},
		"node adds an address it does not have": {
			csrSpec{username: "system:node:w1", groups: nodeGroups, signer: serving, usages: servingUsages, subject: nodeSubject("w1"),
				ips: []net.IP{net.ParseIP("10.0.0.11"), net.ParseIP("10.0.0.99")}}, deny},
		"node asks for another node's serving certificate": {
			csrSpec{username: "system:node:w2", groups: nodeGroups, signer: serving, usages: servingUsages, subject: nodeSubject("w1"),
				ips: []net.IP{net.ParseIP("10.0.0.11")}}, deny},
		"serving certificate with client usage": {
			csrSpec{username: "system:node:w1", groups: nodeGroups, signer: serving, usages: clientUsages, subject: nodeSubject("w1"),
				ips: []net.IP{net.ParseIP("10.0.0.11")}}, deny},
		"serving certificate before the Node exists": {
			csrSpec{username: "system:node:w3", groups: nodeGroups, signer: serving, usages: servingUsages, subject: nodeSubject("w3"),
				ips: []net.IP{net.ParseIP("10.0.0.13")}}, notYet},
		"bootstrap token asks for a serving certificate": {
			csrSpec{username: "system:bootstrap:abcdef", groups: bootstrapGroups, signer: serving, usages: servingUsages, subject: nodeSubject("w1"),
				ips: []net.IP{net.ParseIP("10.0.0.11")}}, notOurs},

		// kube-proxy client certificates.
		"node asks for kube-proxy's certificate": {
			csrSpec{username: "system:node:w1", groups: nodeGroups, signer: apiClient, usages: clientUsages, subject: pkix.Name{CommonName: join.KubeProxyUser}}, approve},
		"kube-proxy certificate with a group": {
			csrSpec{username: "system:node:w1", groups: nodeGroups, signer: apiClient, usages: clientUsages,
				subject: pkix.Name{CommonName: join.KubeProxyUser, Organization: []string{"system:masters"}}}, deny},
		"kube-proxy certificate with a subject alternative name": {
			csrSpec{username: "system:node:w1", groups: nodeGroups, signer: apiClient, usages: clientUsages,
				subject: pkix.Name{CommonName: join.KubeProxyUser}, dnsNames: []string{"w1"}}, deny},
		"kube-proxy certificate for serving": {
			csrSpec{username: "system:node:w1", groups: nodeGroups, signer: apiClient, usages: append(clientUsages, certificatesv1.UsageServerAuth),
				subject: pkix.Name{CommonName: join.KubeProxyUser}}, deny},
		"bootstrap token asks for kube-proxy's certificate": {
			csrSpec{username: "system:bootstrap:abcdef", groups: bootstrapGroups, signer: apiClient, usages: clientUsages, subject: pkix.Name{CommonName: join.KubeProxyUser}}, notOurs},
		"node asks for an admin client certificate": {
			csrSpec{username: "system:node:w1", groups: nodeGroups, signer: apiClient, usages: clientUsages,
				subject: pkix.Name{CommonName: "admin", Organization: []string{"system:masters"}}}, notOurs},

		// Other signers stay with the administrator.
		"legacy unknown signer": {
			csrSpec{username: "system:node:w1", groups: nodeGroups, signer: "example.com/custom", usages: clientUsages, subject: nodeSubject("w1")}, notOurs},
	}
	approver := approverWithNodes(t, workerNode())
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			r := approver.review(c.csr.object(t))
			if got := outcome(r); got != c.want {
				t.Fatalf("got %s (%v), want %s", got, r.verdict, c.want)
			}
			if c.want == claim && r.claim.nodeName != "w1" {
				t.Fatalf("claims node name %q, want w1", r.claim.nodeName)
			}
		})
	}
}

func TestApproverDeniesGarbledRequests(t *testing.T) {
	csr := csrSpec{username: "system:node:w1", groups: nodeGroups, signer: certificatesv1.KubeAPIServerClientKubeletSignerName,
		usages: clientUsages, subject: nodeSubject("w1")}.object(t)
	csr.Spec.Request = []byte("-----BEGIN CERTIFICATE REQUEST-----\nbm90IGEgcmVxdWVzdA==\n-----END CERTIFICATE REQUEST-----\n")
	if got := outcome(approverWithNodes(t).review(csr)); got != deny {
		t.Fatalf("garbled request: got %s, want deny", got)
	}
}
