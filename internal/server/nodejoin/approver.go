package nodejoin

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	certificates "k8s.io/kubernetes/pkg/apis/certificates"

	"github.com/monokube/monokube/internal/join"
)

// errNotYet makes the approver look at a request again later (for example
// a serving certificate asked for before its Node object exists).
var errNotYet = errors.New("not decidable yet")

// Approver decides the certificate requests of joining and joined nodes.
// Upstream's approver is not used (no nodeclient role is bound): only this
// one can tie a node name to the node password that first claimed it.
//
//   - kubelet client certificates: from a worker bootstrap token, when the
//     request's key matches the node password stored for that name (or
//     claims a free name); from the node itself, for rotation.
//   - kubelet serving certificates: from the node itself, for names and
//     addresses its Node object reports.
//   - kube-proxy client certificates: from a node.
//
// Anything else stays pending for an administrator.
type Approver struct {
	Client kubernetes.Interface

	nodes corelisters.NodeLister
}

// Run approves or denies requests until ctx ends; it also frees the node
// password of a deleted Node, so that its name can join again.
func (a *Approver) Run(ctx context.Context) {
	factory := informers.NewSharedInformerFactory(a.Client, 0)
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	csrs := factory.Certificates().V1().CertificateSigningRequests()
	enqueue := func(obj any) {
		if csr, ok := obj.(*certificatesv1.CertificateSigningRequest); ok && pending(csr) {
			queue.Add(csr.Name)
		}
	}
	_, _ = csrs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
	})
	a.nodes = factory.Core().V1().Nodes().Lister()
	_, _ = factory.Core().V1().Nodes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tombstone.Obj
			}
			if node, ok := obj.(*corev1.Node); ok {
				forgetNodePassword(ctx, a.Client, node.Name)
			}
		},
	})
	factory.Start(ctx.Done())
	go func() {
		<-ctx.Done()
		queue.ShutDown()
	}()
	factory.WaitForCacheSync(ctx.Done())
	for {
		name, shutdown := queue.Get()
		if shutdown {
			return
		}
		csr, err := csrs.Lister().Get(name)
		if err == nil && pending(csr) {
			err = a.handle(ctx, csr)
		}
		switch {
		case err == nil || apierrors.IsNotFound(err):
			queue.Forget(name)
		default:
			if !errors.Is(err, errNotYet) {
				klog.ErrorS(err, "Certificate request not decided; retrying", "csr", name)
			}
			queue.AddRateLimited(name)
		}
		queue.Done(name)
	}
}

func pending(csr *certificatesv1.CertificateSigningRequest) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == certificatesv1.CertificateApproved || c.Type == certificatesv1.CertificateDenied {
			return false
		}
	}
	return true
}

// review is the approver's reading of one request, with no side effects.
type review struct {
	// ours is false for requests this approver leaves to an administrator.
	ours bool
	// verdict approves when nil, denies with its text, or (errNotYet) asks
	// for another look later.
	verdict error
	// claim, when set on an approval, makes it depend on the node name's
	// password: a bootstrap request for a kubelet client certificate.
	claim *nodeClaim
}

type nodeClaim struct {
	nodeName  string
	publicKey any
}

// handle approves or denies one request, or leaves it alone.
func (a *Approver) handle(ctx context.Context, csr *certificatesv1.CertificateSigningRequest) error {
	r := a.review(csr)
	if !r.ours {
		return nil
	}
	if r.verdict == nil && r.claim != nil {
		r.verdict = claimNodeName(ctx, a.Client, r.claim.nodeName, r.claim.publicKey)
	}
	if errors.Is(r.verdict, errNotYet) {
		return r.verdict
	}
	return a.decide(ctx, csr, r.verdict)
}

// review decides which rule applies to csr and what it says.
func (a *Approver) review(csr *certificatesv1.CertificateSigningRequest) review {
	request, err := certificates.ParseCSR(csr.Spec.Request)
	if err != nil {
		return review{ours: true, verdict: fmt.Errorf("unparsable request: %w", err)}
	}
	if err := request.CheckSignature(); err != nil {
		return review{ours: true, verdict: fmt.Errorf("bad request signature: %w", err)}
	}
	usages := sets.NewString() // the upstream validators take this type
	for _, u := range csr.Spec.Usages {
		usages.Insert(string(u))
	}
	switch csr.Spec.SignerName {
	case certificatesv1.KubeAPIServerClientKubeletSignerName:
		if !fromNode(csr) && !fromWorkerBootstrap(csr) {
			return review{}
		}
		return kubeletClient(csr, request, usages)
	case certificatesv1.KubeletServingSignerName:
		if !fromNode(csr) {
			return review{}
		}
		return review{ours: true, verdict: a.kubeletServing(csr, request, usages)}
	case certificatesv1.KubeAPIServerClientSignerName:
		// Only a joined node (one that proved its node password) gets it.
		if request.Subject.CommonName != join.KubeProxyUser || !fromNode(csr) {
			return review{}
		}
		return review{ours: true, verdict: kubeProxyClient(request, usages)}
	}
	return review{}
}

func fromNode(csr *certificatesv1.CertificateSigningRequest) bool {
	return strings.HasPrefix(csr.Spec.Username, join.NodeUserPrefix) && slices.Contains(csr.Spec.Groups, "system:nodes")
}

func fromWorkerBootstrap(csr *certificatesv1.CertificateSigningRequest) bool {
	return slices.Contains(csr.Spec.Groups, join.BootstrapGroup(join.RoleWorker)) || slices.Contains(csr.Spec.Groups, join.BootstrapGroup(join.RoleController))
}

// kubeletClient reviews a kubelet client certificate request: a node may
// renew only its own identity; a bootstrap request must claim its name.
func kubeletClient(csr *certificatesv1.CertificateSigningRequest, request *x509.CertificateRequest, usages sets.String) review {
	if err := certificates.ValidateKubeletClientCSR(request, usages); err != nil {
		return review{ours: true, verdict: err}
	}
	if fromNode(csr) {
		if csr.Spec.Username != request.Subject.CommonName {
			return review{ours: true, verdict: fmt.Errorf("%s may not request a certificate for %s", csr.Spec.Username, request.Subject.CommonName)}
		}
		return review{ours: true}
	}
	nodeName := strings.TrimPrefix(request.Subject.CommonName, join.NodeUserPrefix)
	return review{ours: true, claim: &nodeClaim{nodeName: nodeName, publicKey: request.PublicKey}}
}

func (a *Approver) kubeletServing(csr *certificatesv1.CertificateSigningRequest, request *x509.CertificateRequest, usages sets.String) error {
	if err := certificates.ValidateKubeletServingCSR(request, usages); err != nil {
		return err
	}
	if csr.Spec.Username != request.Subject.CommonName {
		return fmt.Errorf("%s may not request a serving certificate for %s", csr.Spec.Username, request.Subject.CommonName)
	}
	nodeName := strings.TrimPrefix(request.Subject.CommonName, join.NodeUserPrefix)
	node, err := a.nodes.Get(nodeName)
	if apierrors.IsNotFound(err) {
		return errNotYet
	}
	if err != nil {
		return fmt.Errorf("%w: %v", errNotYet, err)
	}
	names := sets.New(nodeName)
	var ips []net.IP
	for _, address := range node.Status.Addresses {
		switch address.Type {
		case corev1.NodeHostName, corev1.NodeInternalDNS, corev1.NodeExternalDNS:
			names.Insert(address.Address)
		case corev1.NodeInternalIP, corev1.NodeExternalIP:
			ips = append(ips, net.ParseIP(address.Address))
		}
	}
	for _, name := range request.DNSNames {
		if !names.Has(name) {
			return fmt.Errorf("DNS name %q is not one of node %s", name, nodeName)
		}
	}
	for _, ip := range request.IPAddresses {
		if !slices.ContainsFunc(ips, ip.Equal) {
			return fmt.Errorf("IP %s is not an address of node %s", ip, nodeName)
		}
	}
	return nil
}

func kubeProxyClient(request *x509.CertificateRequest, usages sets.String) error {
	switch {
	case len(request.Subject.Organization) > 0:
		return errors.New("kube-proxy certificates carry no groups")
	case len(request.DNSNames)+len(request.IPAddresses)+len(request.EmailAddresses)+len(request.URIs) > 0:
		return errors.New("kube-proxy client certificates carry no subject alternative names")
	case !usages.Has(string(certificatesv1.UsageClientAuth)) || usages.Has(string(certificatesv1.UsageServerAuth)):
		return errors.New("kube-proxy certificates are for client authentication only")
	}
	return nil
}

// decide writes the verdict: nil approves, an error denies with its text.
func (a *Approver) decide(ctx context.Context, csr *certificatesv1.CertificateSigningRequest, verdict error) error {
	csr = csr.DeepCopy()
	condition := certificatesv1.CertificateSigningRequestCondition{
		Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue,
		Reason: "MonokubeApproved", Message: "approved by monokube's node approver", LastUpdateTime: metav1.NewTime(time.Now()),
	}
	if verdict != nil {
		condition.Type, condition.Reason, condition.Message = certificatesv1.CertificateDenied, "MonokubeDenied", verdict.Error()
	}
	csr.Status.Conditions = append(csr.Status.Conditions, condition)
	if _, err := a.Client.CertificatesV1().CertificateSigningRequests().UpdateApproval(ctx, csr.Name, csr, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("record decision: %w", err)
	}
	klog.InfoS("Certificate request decided", "csr", csr.Name, "signer", csr.Spec.SignerName, "requester", csr.Spec.Username,
		"approved", verdict == nil, "reason", condition.Message)
	return nil
}
