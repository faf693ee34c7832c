package e2e

import (
	"context"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/monokube/monokube/test/harness"
)

// TestTraefik: the bundled Traefik serves a plain Ingress (no class: the
// default IngressClass), the same host over TLS from a Secret, and a
// Gateway API HTTPRoute, all on the node's ports 80 and 443 through
// ServiceLB; a HelmChartConfig reaches its Deployment; --disable traefik
// removes it.
func TestTraefik(t *testing.T) {
	node := startNode(t, "")
	client := node.Client()

	if !harness.PollOK(2*time.Minute, func(ctx context.Context) (bool, error) {
		d, err := client.AppsV1().Deployments("kube-system").Get(ctx, "traefik", metav1.GetOptions{})
		return err == nil && d.Status.AvailableReplicas >= 1, nil
	}) {
		logs, _ := node.Kubectl("-n", "kube-system", "logs", "deploy/traefik", "--tail=40")
		previous, _ := node.Kubectl("-n", "kube-system", "logs", "deploy/traefik", "--previous", "--tail=40")
		t.Fatalf("Traefik's Deployment is not available after 2 minutes; its log:\n%s\nbefore its last restart:\n%s", logs, previous)
	}
	class, err := client.NetworkingV1().IngressClasses().Get(context.Background(), "traefik", metav1.GetOptions{})
	if err != nil || class.Annotations["ingressclass.kubernetes.io/is-default-class"] != "true" {
		t.Fatalf("IngressClass traefik: %v, annotations %v; want the default class", err, class.Annotations)
	}

	caPEM, certPEM, keyPEM := harness.ServingCertificates(t, "web.test")
	if _, err := client.CoreV1().Secrets("default").Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "web-tls"},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	node.Apply(fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: ingweb, labels: {app: ingweb}}
spec:
  containers:
  - name: c
    image: %[1]s
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "mkdir -p /www && echo ingress-ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
---
apiVersion: v1
kind: Service
metadata: {name: ingweb}
spec:
  selector: {app: ingweb}
  ports: [{port: 80, targetPort: 8080}]
`, image))
	harness.WaitPhase(t, client, "default", "ingweb", corev1.PodRunning)

	t.Run("IngressWithoutClass", func(t *testing.T) {
		applied := time.Now()
		node.Apply(`
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  rules:
  - host: web.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: ingweb, port: {number: 80}}}}
`)
		harness.Poll(t, 30*time.Second, "http://web.test/ through Traefik on the node's IP", func(ctx context.Context) (bool, error) {
			return strings.Contains(harness.HostGet(ctx, "http", node.IP, "web.test", nil), "ingress-ok"), nil
		})
		t.Logf("the Ingress answered %s after kubectl apply", time.Since(applied).Round(100*time.Millisecond))
		harness.Poll(t, 30*time.Second, "the Ingress's status shows the node's IP", func(ctx context.Context) (bool, error) {
			ing, err := client.NetworkingV1().Ingresses("default").Get(ctx, "web", metav1.GetOptions{})
			return err == nil && len(ing.Status.LoadBalancer.Ingress) > 0 && ing.Status.LoadBalancer.Ingress[0].IP == node.IP, nil
		})
		if body := harness.HostGet(context.Background(), "http", node.IP, "other.test", nil); strings.Contains(body, "ingress-ok") {
			t.Errorf("a host no rule names reached the pod: %q", body)
		}
	})

	t.Run("IngressTLSFromSecret", func(t *testing.T) {
		node.Apply(`
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web-tls}
spec:
  tls: [{hosts: [web.test], secretName: web-tls}]
  rules:
  - host: web.test
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: ingweb, port: {number: 80}}}}
`)
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(caPEM)
		harness.Poll(t, 30*time.Second, "https://web.test/ with the Secret's certificate", func(ctx context.Context) (bool, error) {
			return strings.Contains(harness.HostGet(ctx, "https", node.IP, "web.test", roots), "ingress-ok"), nil
		})
	})

	t.Run("GatewayAndHTTPRoute", func(t *testing.T) {
		harness.Poll(t, 60*time.Second, "GatewayClass traefik Accepted", func(context.Context) (bool, error) {
			out, err := node.Kubectl("get", "gatewayclass", "traefik", "-o", "jsonpath={.status.conditions[?(@.type=='Accepted')].status}")
			return err == nil && out == "True", nil
		})
		node.Apply(`
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: web}
spec:
  gatewayClassName: traefik
  listeners: [{name: http, protocol: HTTP, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{name: web}]
  hostnames: [route.test]
  rules: [{backendRefs: [{name: ingweb, port: 80}]}]
`)
		harness.Poll(t, 60*time.Second, "http://route.test/ through the Gateway", func(ctx context.Context) (bool, error) {
			return strings.Contains(harness.HostGet(ctx, "http", node.IP, "route.test", nil), "ingress-ok"), nil
		})
	})

	t.Run("HelmChartConfigReachesTheDeployment", func(t *testing.T) {
		const argument = "--entryPoints.web.transport.respondingTimeouts.idleTimeout=181s"
		node.Apply(`
apiVersion: helm.cattle.io/v1
kind: HelmChartConfig
metadata: {name: traefik, namespace: kube-system}
spec:
  valuesContent: |-
    additionalArguments: ["` + argument + `"]
`)
		harness.Poll(t, 60*time.Second, "the HelmChartConfig's argument in Traefik's Deployment", func(ctx context.Context) (bool, error) {
			d, err := client.AppsV1().Deployments("kube-system").Get(ctx, "traefik", metav1.GetOptions{})
			return err == nil && strings.Contains(strings.Join(d.Spec.Template.Spec.Containers[0].Args, " "), argument), nil
		})
	})

	t.Run("DisabledTraefikIsRemoved", func(t *testing.T) {
		restartWithout(t, node, "traefik")
		harness.Poll(t, 60*time.Second, "Traefik's Deployment, Service and IngressClass removed", func(ctx context.Context) (bool, error) {
			_, err1 := client.AppsV1().Deployments("kube-system").Get(ctx, "traefik", metav1.GetOptions{})
			_, err2 := client.CoreV1().Services("kube-system").Get(ctx, "traefik", metav1.GetOptions{})
			_, err3 := client.NetworkingV1().IngressClasses().Get(ctx, "traefik", metav1.GetOptions{})
			return apierrors.IsNotFound(err1) && apierrors.IsNotFound(err2) && apierrors.IsNotFound(err3), nil
		})
		// The Gateway API stays: another controller may serve it, and
		// users' Gateways and routes are kept.
		if _, err := node.Kubectl("get", "crd", "gateways.gateway.networking.k8s.io"); err != nil {
			t.Errorf("the Gateway API CRDs went with Traefik: %v", err)
		}
		if _, err := node.Kubectl("get", "gateway", "web"); err != nil {
			t.Errorf("the user's Gateway went with Traefik: %v", err)
		}
	})
}
