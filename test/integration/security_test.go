package integration

import (
	"bufio"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/monokube/monokube/test/harness"
)

// secAuditPolicy logs, at Metadata level, only what the checks below read:
// creations of Pods, ReplicaSets and Deployments.
const secAuditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  verbs: ["create"]
  resources:
  - group: ""
    resources: ["pods"]
  - group: "apps"
    resources: ["replicasets", "deployments"]
- level: None
`

// secPorts turns off the scheduler's and controller-manager's health ports
// (10259/10257 are shared by every server on the machine), so this server
// can run next to others.
const secPorts = `  controllerManager:
    extraArgs:
      secure-port: "0"
  scheduler:
    extraArgs:
      secure-port: "0"
`

// TestSecurityPromises checks the README's "Secure defaults" that concern
// identities: what a node's credentials may do, Pod Security Admission,
// controllers' own service accounts, service-account token signing and the
// node certificate approver. One server with the default settings (plus
// an audit log the checks read) is shared; each subtest fails if the
// promise it names is dropped.
func TestSecurityPromises(t *testing.T) {
	auditDir := t.TempDir()
	auditLog := filepath.Join(auditDir, "audit.log")
	auditPolicy := filepath.Join(auditDir, "policy.yaml")
	if err := os.WriteFile(auditPolicy, []byte(secAuditPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	server := harness.NewServer(t, "")
	server.WriteConfig(fmt.Sprintf("    extraArgs:\n      audit-log-path: %s\n      audit-policy-file: %s\n", auditLog, auditPolicy), secPorts)
	server.StartReady()
	admin := server.Client()
	ctx := context.Background()

	// Two Nodes without kubelets, and credentials of the first one, as the
	// kubelet of n1 would have them. n1 reports the address 10.0.0.11.
	// The addresses are part of the creation (a Node's status may be set
	// then), so the approver never sees n1 without them.
	for name, ip := range map[string]string{"n1": "10.0.0.11", "n2": "10.0.0.12"} {
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Status:     corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}, {Type: corev1.NodeHostName, Address: name}}},
		}
		created, err := admin.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create node %s: %v", name, err)
		}
		if len(created.Status.Addresses) != 2 {
			t.Fatalf("node %s created without its addresses: %+v", name, created.Status.Addresses)
		}
	}
	n1 := secUserClient(t, server, "system:node:n1", "system:nodes")
	secWaitServiceAccount(t, admin, "default")

	t.Run("NodeReadsOnlySecretsOfItsOwnPods", func(t *testing.T) {
		for _, node := range []string{"n1", "n2"} {
			secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "secret-of-" + node}, StringData: map[string]string{"k": "v"}}
			if _, err := admin.CoreV1().Secrets("default").Create(ctx, secret, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			pod := secPod("pod-on-"+node, false)
			pod.Spec.NodeName = node
			pod.Spec.Volumes = []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secret.Name}}}}
			if _, err := admin.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		// The Node authorizer learns pod→secret edges from an informer.
		var lastErr error
		if !harness.PollOK(30*time.Second, func(context.Context) (bool, error) {
			_, lastErr = n1.CoreV1().Secrets("default").Get(context.Background(), "secret-of-n1", metav1.GetOptions{})
			return lastErr == nil, nil
		}) {
			t.Fatalf("n1 cannot read the Secret of its own pod: %v", lastErr)
		}
		_, err := n1.CoreV1().Secrets("default").Get(ctx, "secret-of-n2", metav1.GetOptions{})
		if !apierrors.IsForbidden(err) {
			t.Fatalf("n1 reading the Secret of a pod on n2: err = %v, want Forbidden", err)
		}
		// Nor any Secret by listing.
		if _, err := n1.CoreV1().Secrets("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Fatalf("n1 listing Secrets: err = %v, want Forbidden", err)
		}
	})

	t.Run("NodeCannotModifyAnotherNode", func(t *testing.T) {
		// Control: n1 may label itself with an ordinary label.
		if err := secPatchLabel(ctx, n1, "n1", "example.com/team", "blue"); err != nil {
			t.Fatalf("n1 labelling itself: %v", err)
		}
		err := secPatchLabel(ctx, n1, "n2", "example.com/team", "blue")
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `node "n1" is not allowed to modify node "n2"`) {
			t.Fatalf("n1 labelling n2: err = %v, want Forbidden by NodeRestriction", err)
		}
		n2, err := admin.CoreV1().Nodes().Get(ctx, "n2", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := n2.Labels["example.com/team"]; ok {
			t.Fatalf("n2 got the label: %v", n2.Labels)
		}
		patch := []byte(`{"spec":{"unschedulable":true}}`)
		if _, err := n1.CoreV1().Nodes().Patch(ctx, "n2", types.MergePatchType, patch, metav1.PatchOptions{}); !apierrors.IsForbidden(err) {
			t.Fatalf("n1 cordoning n2: err = %v, want Forbidden", err)
		}
	})

	t.Run("NodeCannotSetNodeRestrictionLabelsOnItself", func(t *testing.T) {
		err := secPatchLabel(ctx, n1, "n1", "node-restriction.kubernetes.io/dedicated", "secrets")
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "node-restriction.kubernetes.io/dedicated") {
			t.Fatalf("n1 setting a node-restriction.kubernetes.io/ label on itself: err = %v, want Forbidden naming the label", err)
		}
	})

	t.Run("PodSecurityEnforcesBaselineWarnsRestrictedExemptsKubeSystem", func(t *testing.T) {
		server.MustKubectl("create", "namespace", "psa-check")
		secWaitServiceAccount(t, admin, "psa-check")
		secWaitServiceAccount(t, admin, "kube-system")

		out, err := secKubectlCreate(server, "psa-check", secPod("privileged", true))
		if err == nil || !strings.Contains(out, `violates PodSecurity "baseline:latest"`) {
			t.Fatalf("privileged pod in a namespace without labels: err = %v, want refusal at baseline:\n%s", err, out)
		}
		out, err = secKubectlCreate(server, "psa-check", secPod("baseline-only", false))
		if err != nil {
			t.Fatalf("baseline pod refused: %v\n%s", err, out)
		}
		if !strings.Contains(out, `Warning: would violate PodSecurity "restricted:latest"`) {
			t.Fatalf("baseline pod admitted without a warning naming restricted:\n%s", out)
		}
		out, err = secKubectlCreate(server, "kube-system", secPod("privileged", true))
		if err != nil {
			t.Fatalf("privileged pod refused in kube-system: %v\n%s", err, out)
		}
		if strings.Contains(out, "PodSecurity") {
			t.Fatalf("kube-system is exempt, yet kubectl printed a PodSecurity warning:\n%s", out)
		}
		_ = admin.CoreV1().Pods("kube-system").Delete(ctx, "privileged", metav1.DeleteOptions{})
	})

	t.Run("PodSecurityAuditsAtRestricted", func(t *testing.T) {
		server.MustKubectl("create", "namespace", "psa-audit")
		secWaitServiceAccount(t, admin, "psa-audit")
		if out, err := secKubectlCreate(server, "psa-audit", secPod("audited", false)); err != nil {
			t.Fatalf("baseline pod refused: %v\n%s", err, out)
		}
		event := secFindAuditEvent(t, auditLog, "creation of pod psa-audit/audited", func(e *auditv1.Event) bool {
			return secIsCreate(e, "pods", "psa-audit") && e.ObjectRef.Name == "audited"
		})
		violations := event.Annotations["pod-security.kubernetes.io/audit-violations"]
		if !strings.Contains(violations, `would violate PodSecurity "restricted:latest"`) {
			t.Fatalf("audit event of the pod creation has no restricted violation annotation: %v", event.Annotations)
		}
	})

	t.Run("ControllersActAsTheirOwnServiceAccounts", func(t *testing.T) {
		server.MustKubectl("create", "namespace", "controllers")
		secWaitServiceAccount(t, admin, "controllers")
		server.MustKubectl("-n", "controllers", "create", "deployment", "web", "--image=busybox:stable")
		want := map[string]string{
			"replicasets": "system:serviceaccount:kube-system:deployment-controller",
			"pods":        "system:serviceaccount:kube-system:replicaset-controller",
		}
		harness.Poll(t, time.Minute, "a Pod of Deployment web", func(ctx context.Context) (bool, error) {
			pods, err := admin.CoreV1().Pods("controllers").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			return err == nil && len(pods.Items) > 0, nil
		})
		for resource, user := range want {
			secFindAuditEvent(t, auditLog, "creation of "+resource+" in controllers", func(e *auditv1.Event) bool {
				return secIsCreate(e, resource, "controllers")
			})
			for _, e := range secAuditEvents(t, auditLog) {
				if secIsCreate(&e, resource, "controllers") && e.User.Username != user {
					t.Errorf("%s created in controllers by %q, want %q", resource, e.User.Username, user)
				}
			}
		}
	})

	t.Run("ServiceAccountTokensVerifyAgainstSaPub", func(t *testing.T) {
		token := strings.TrimSpace(server.MustKubectl("-n", "default", "create", "token", "default"))
		pub := secReadPublicKey(t, filepath.Join(server.DataDir, "pki", "sa.pub"))
		header, claims := secVerifyJWT(t, token, pub)
		if header["alg"] == "" {
			t.Fatalf("token header without alg: %v", header)
		}
		if iss := claims["iss"]; iss != "https://kubernetes.default.svc.cluster.local" {
			t.Errorf("iss = %v, want https://kubernetes.default.svc.cluster.local", iss)
		}
		if sub := claims["sub"]; sub != "system:serviceaccount:default:default" {
			t.Errorf("sub = %v", sub)
		}
		// Control: the genuine token is accepted.
		if user, err := secWhoAmI(server, token); err != nil || user != "system:serviceaccount:default:default" {
			t.Fatalf("genuine token: user %q, err %v", user, err)
		}
		// The same claims, signed by a key of our own: refused, whether the
		// header names sa.pub's key id or (so that every key is tried) none.
		for _, dropKeyID := range []bool{false, true} {
			forged := secResign(t, token, dropKeyID)
			if _, err := secWhoAmI(server, forged); !apierrors.IsUnauthorized(err) {
				t.Fatalf("token signed by another key (kid dropped: %v): err = %v, want 401 Unauthorized", dropKeyID, err)
			}
		}
	})

	t.Run("CSRApproverFollowsTheNodesAddresses", func(t *testing.T) {
		serving := []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageServerAuth}
		// First the request the approver must leave alone, so it had the
		// same time as the others to (wrongly) decide it.
		secSubmitCSR(t, n1, "client-for-admin", certificatesv1.KubeAPIServerClientSignerName,
			[]certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
			pkix.Name{CommonName: "admin", Organization: []string{"ops"}}, nil)
		secSubmitCSR(t, n1, "serving-own-ip", certificatesv1.KubeletServingSignerName, serving,
			pkix.Name{CommonName: "system:node:n1", Organization: []string{"system:nodes"}}, []string{"10.0.0.11"})
		secSubmitCSR(t, n1, "serving-foreign-ip", certificatesv1.KubeletServingSignerName, serving,
			pkix.Name{CommonName: "system:node:n1", Organization: []string{"system:nodes"}}, []string{"10.0.0.11", "10.0.0.99"})
		// n1 asking for n2's serving certificate: NodeRestriction refuses
		// the request itself; where it is off, the approver must deny it.
		otherErr := secCreateCSR(t, n1, "serving-other-node", certificatesv1.KubeletServingSignerName, serving,
			pkix.Name{CommonName: "system:node:n2", Organization: []string{"system:nodes"}}, []string{"10.0.0.12"})

		approved := secWaitDecision(t, admin, "serving-own-ip")
		if approved.Type != certificatesv1.CertificateApproved || approved.Reason != "MonokubeApproved" {
			t.Errorf("serving-own-ip: %s/%s %q, want Approved/MonokubeApproved", approved.Type, approved.Reason, approved.Message)
		}
		denied := secWaitDecision(t, admin, "serving-foreign-ip")
		if denied.Type != certificatesv1.CertificateDenied || !strings.Contains(denied.Message, "10.0.0.99") {
			t.Errorf("serving-foreign-ip: %s %q, want Denied naming 10.0.0.99", denied.Type, denied.Message)
		}
		if otherErr != nil {
			if !apierrors.IsForbidden(otherErr) || !strings.Contains(otherErr.Error(), "CN=system:node:n1") {
				t.Errorf("serving-other-node (n1 asking for system:node:n2): err = %v, want Forbidden", otherErr)
			}
		} else {
			t.Log("serving-other-node was accepted (NodeRestriction off?): the approver must deny it")
			other := secWaitDecision(t, admin, "serving-other-node")
			if other.Type != certificatesv1.CertificateDenied || !strings.Contains(other.Message, "system:node:n2") {
				t.Errorf("serving-other-node (n1 asking for system:node:n2): %s %q, want Denied", other.Type, other.Message)
			}
		}
		// The approved one is then signed by the cluster CA.
		harness.Poll(t, time.Minute, "certificate of serving-own-ip", func(ctx context.Context) (bool, error) {
			csr, err := admin.CertificatesV1().CertificateSigningRequests().Get(ctx, "serving-own-ip", metav1.GetOptions{})
			return err == nil && len(csr.Status.Certificate) > 0, nil
		})
		csr, err := admin.CertificatesV1().CertificateSigningRequests().Get(ctx, "serving-own-ip", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(csr.Status.Certificate)
		if block == nil {
			t.Fatalf("serving-own-ip: certificate is not PEM: %q", csr.Status.Certificate)
		}
		issued, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		ca, err := os.ReadFile(filepath.Join(server.DataDir, "pki", "ca.crt"))
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(ca)
		if _, err := issued.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("issued serving certificate does not chain to the cluster CA: %v", err)
		}
		if issued.Subject.CommonName != "system:node:n1" || len(issued.IPAddresses) != 1 || !issued.IPAddresses[0].Equal(net.ParseIP("10.0.0.11")) {
			t.Errorf("issued certificate: subject %s, IPs %v", issued.Subject, issued.IPAddresses)
		}

		// Anything that is not a node's own certificate stays pending for an
		// administrator, while the approver has decided everything else.
		if harness.PollOK(5*time.Second, func(ctx context.Context) (bool, error) {
			csr, err := admin.CertificatesV1().CertificateSigningRequests().Get(ctx, "client-for-admin", metav1.GetOptions{})
			return err == nil && len(csr.Status.Conditions) > 0, nil
		}) {
			t.Fatal("client certificate for admin requested by n1 was decided; it must stay pending for an administrator")
		}
		if csr, err := admin.CertificatesV1().CertificateSigningRequests().Get(ctx, "client-for-admin", metav1.GetOptions{}); err != nil || len(csr.Status.Conditions) > 0 {
			t.Fatalf("client-for-admin: err %v, conditions %+v, want pending", err, csr.Status.Conditions)
		}
		// With system:masters, upstream's CertificateSubjectRestriction
		// refuses the request before any approver sees it.
		err = secCreateCSR(t, n1, "client-for-masters", certificatesv1.KubeAPIServerClientSignerName,
			[]certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
			pkix.Name{CommonName: "admin", Organization: []string{"system:masters"}}, nil)
		if !apierrors.IsForbidden(err) {
			t.Fatalf("CSR for a system:masters client certificate: err = %v, want Forbidden", err)
		}
	})
}

// secUserClient runs `monokube user create NAME --groups GROUP
// --allow-system` and returns a client-go clientset with that identity.
func secUserClient(t *testing.T, server *harness.Server, name, group string) kubernetes.Interface {
	t.Helper()
	stdout, stderr, err := server.Run("user", "create", name, "--groups", group, "--allow-system")
	if err != nil {
		t.Fatalf("user create %s: %v\n%s", name, err, stderr)
	}
	config, err := clientcmd.RESTConfigFromKubeConfig([]byte(stdout))
	if err != nil {
		t.Fatalf("kubeconfig of %s: %v", name, err)
	}
	config.Timeout = 10 * time.Second
	config.WarningHandler = rest.NoWarnings{}
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// secWaitServiceAccount waits for a namespace's default ServiceAccount,
// which the ServiceAccount admission plugin needs before any pod.
func secWaitServiceAccount(t *testing.T, client kubernetes.Interface, namespace string) {
	t.Helper()
	harness.Poll(t, time.Minute, "default ServiceAccount in "+namespace, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().ServiceAccounts(namespace).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
}

// secPod is a pod that meets baseline but not restricted, or with
// privileged set, not even baseline.
func secPod(name string, privileged bool) *corev1.Pod {
	container := corev1.Container{Name: "c", Image: "busybox:stable", Command: []string{"sleep", "3600"}}
	if privileged {
		container.SecurityContext = &corev1.SecurityContext{Privileged: &privileged}
	}
	return &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{container}},
	}
}

// secKubectlCreate creates pod with the stock kubectl as admin and returns
// kubectl's combined output (warnings included).
func secKubectlCreate(server *harness.Server, namespace string, pod *corev1.Pod) (string, error) {
	manifest, err := json.Marshal(pod)
	if err != nil {
		return "", err
	}
	return server.KubectlStdin(string(manifest), "-n", namespace, "create", "-f", "-")
}

func secPatchLabel(ctx context.Context, client kubernetes.Interface, node, key, value string) error {
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]string{key: value}}})
	_, err := client.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{})
	return err
}

// secAuditEvents reads every event in the audit log so far.
func secAuditEvents(t *testing.T, path string) []auditv1.Event {
	t.Helper()
	file, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	var events []auditv1.Event
	scanner := bufio.NewScanner(file)
	scanner.Buffer(make([]byte, 1<<20), 16<<20)
	for scanner.Scan() {
		var e auditv1.Event
		if err := json.Unmarshal(scanner.Bytes(), &e); err != nil {
			continue // a line still being written
		}
		events = append(events, e)
	}
	return events
}

// secFindAuditEvent waits for an audit event that match accepts.
func secFindAuditEvent(t *testing.T, path, what string, match func(*auditv1.Event) bool) *auditv1.Event {
	t.Helper()
	var found *auditv1.Event
	harness.Poll(t, time.Minute, "audit event: "+what, func(context.Context) (bool, error) {
		for _, e := range secAuditEvents(t, path) {
			if match(&e) {
				found = &e
				return true, nil
			}
		}
		return false, nil
	})
	return found
}

// secIsCreate matches a successful creation of resource in namespace.
func secIsCreate(e *auditv1.Event, resource, namespace string) bool {
	return e.Verb == "create" && e.Stage == auditv1.StageResponseComplete && e.ObjectRef != nil &&
		e.ObjectRef.Resource == resource && e.ObjectRef.Subresource == "" && e.ObjectRef.Namespace == namespace &&
		e.ResponseStatus != nil && e.ResponseStatus.Code == 201
}

func secReadPublicKey(t *testing.T, path string) crypto.PublicKey {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	if block == nil || block.Type != "PUBLIC KEY" {
		t.Fatalf("%s is not a PEM public key", path)
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// secVerifyJWT checks a compact JWS (RS256 or ES256) against key and
// returns its header and claims.
func secVerifyJWT(t *testing.T, token string, key crypto.PublicKey) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	for i, target := range []*map[string]any{&header, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("JWT part %d: %v", i, err)
		}
		if err := json.Unmarshal(raw, target); err != nil {
			t.Fatalf("JWT part %d: %v", i, err)
		}
	}
	signature, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	switch alg := header["alg"]; {
	case alg == "ES256":
		pub, ok := key.(*ecdsa.PublicKey)
		if !ok || len(signature) != 64 {
			t.Fatalf("ES256 token, key %T, signature of %d bytes", key, len(signature))
		}
		r, s := new(big.Int).SetBytes(signature[:32]), new(big.Int).SetBytes(signature[32:])
		if !ecdsa.Verify(pub, digest[:], r, s) {
			t.Fatal("ES256 signature does not verify against the public key")
		}
	case alg == "RS256":
		pub, ok := key.(*rsa.PublicKey)
		if !ok {
			t.Fatalf("RS256 token, key %T", key)
		}
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], signature); err != nil {
			t.Fatalf("RS256 signature does not verify against the public key: %v", err)
		}
	default:
		t.Fatalf("unexpected JWT alg %v", alg)
	}
	return header, claims
}

// secResign keeps token's claims and header (without its kid when
// dropKeyID) and signs them with a fresh key of the same algorithm.
func secResign(t *testing.T, token string, dropKeyID bool) string {
	t.Helper()
	parts := strings.Split(token, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var header map[string]any
	if err := json.Unmarshal(raw, &header); err != nil {
		t.Fatal(err)
	}
	if dropKeyID {
		delete(header, "kid")
		raw, _ = json.Marshal(header)
		parts[0] = base64.RawURLEncoding.EncodeToString(raw)
	}
	signed := parts[0] + "." + parts[1]
	digest := sha256.Sum256([]byte(signed))
	var signature []byte
	var public crypto.PublicKey
	switch header["alg"] {
	case "ES256":
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		signature = append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
		public = key.Public()
	case "RS256":
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		if signature, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:]); err != nil {
			t.Fatal(err)
		}
		public = key.Public()
	default:
		t.Fatalf("unexpected JWT alg %v", header["alg"])
	}
	forged := signed + "." + base64.RawURLEncoding.EncodeToString(signature)
	secVerifyJWT(t, forged, public) // well-formed: only the key differs
	return forged
}

// secWhoAmI asks the API server who a bearer token is.
func secWhoAmI(server *harness.Server, bearer string) (string, error) {
	ca, err := os.ReadFile(filepath.Join(server.DataDir, "pki", "ca.crt"))
	if err != nil {
		return "", err
	}
	client, err := kubernetes.NewForConfig(&rest.Config{
		Host:            "https://127.0.0.1:" + strconv.Itoa(server.Port),
		BearerToken:     bearer,
		TLSClientConfig: rest.TLSClientConfig{CAData: ca},
		Timeout:         10 * time.Second,
	})
	if err != nil {
		return "", err
	}
	review, err := client.AuthenticationV1().SelfSubjectReviews().Create(context.Background(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return review.Status.UserInfo.Username, nil
}

// secCreateCSR creates a CertificateSigningRequest for a fresh P-256 key.
func secCreateCSR(t *testing.T, client kubernetes.Interface, name, signer string, usages []certificatesv1.KeyUsage, subject pkix.Name, ips []string) error {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.CertificateRequest{Subject: subject}
	for _, ip := range ips {
		template.IPAddresses = append(template.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, template, key)
	if err != nil {
		t.Fatal(err)
	}
	csr := &certificatesv1.CertificateSigningRequest{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: certificatesv1.CertificateSigningRequestSpec{
			Request:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
			SignerName: signer,
			Usages:     usages,
		},
	}
	_, err = client.CertificatesV1().CertificateSigningRequests().Create(context.Background(), csr, metav1.CreateOptions{})
	return err
}

func secSubmitCSR(t *testing.T, client kubernetes.Interface, name, signer string, usages []certificatesv1.KeyUsage, subject pkix.Name, ips []string) {
	t.Helper()
	if err := secCreateCSR(t, client, name, signer, usages, subject, ips); err != nil {
		t.Fatalf("create CSR %s: %v", name, err)
	}
}

// secWaitDecision waits for an Approved or Denied condition on a CSR.
func secWaitDecision(t *testing.T, client kubernetes.Interface, name string) certificatesv1.CertificateSigningRequestCondition {
	t.Helper()
	var decision *certificatesv1.CertificateSigningRequestCondition
	harness.Poll(t, time.Minute, "decision on CSR "+name, func(ctx context.Context) (bool, error) {
		csr, err := client.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		for _, c := range csr.Status.Conditions {
			if c.Type == certificatesv1.CertificateApproved || c.Type == certificatesv1.CertificateDenied {
				decision = &c
				return true, nil
			}
		}
		return false, nil
	})
	return *decision
}
