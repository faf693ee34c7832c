package integration

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/monokube/monokube/test/harness"
)

// auditEvent is what the test reads of an audit.k8s.io/v1 Event.
type auditEvent struct {
	Level      string `json:"level"`
	Verb       string `json:"verb"`
	RequestURI string `json:"requestURI"`
	User       struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef *struct {
		Resource string `json:"resource"`
		Name     string `json:"name"`
	} `json:"objectRef"`
	RequestObject json.RawMessage `json:"requestObject"`
}

// TestAuditLogRecordsWhoWithoutSecrets switches spec.api.audit on: a
// Secret created with kubectl is in <data-dir>/logs/audit.log with its
// user and verb, and its value is nowhere in the file; a pod's creation
// carries its body; health checks are not recorded.
func TestAuditLogRecordsWhoWithoutSecrets(t *testing.T) {
	server := harness.NewServer(t, "")
	sink := startAuditSink(t)
	server.WriteConfig("    audit:\n      enabled: true\n      webhook: "+sink.kubeconfig+"\n", "")
	server.StartReady()
	const plaintext = "not-for-the-audit-log-5520"
	who := strings.TrimSpace(server.MustKubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"))
	server.MustKubectl("create", "secret", "generic", "vault", "--from-literal=password="+plaintext)
	server.MustKubectl("create", "configmap", "settings", "--from-literal=colour=teal")

	path := filepath.Join(server.DataDir, "logs", "audit.log")
	var secret, configMap *auditEvent
	var raw []byte
	harness.Poll(t, 30*time.Second, "the Secret's creation in "+path, func(context.Context) (bool, error) {
		raw, _ = os.ReadFile(path)
		secret, configMap = nil, nil
		for _, line := range strings.Split(string(raw), "\n") {
			var event auditEvent
			if json.Unmarshal([]byte(line), &event) != nil || event.ObjectRef == nil || event.Verb != "create" {
				continue
			}
			switch {
			case event.ObjectRef.Resource == "secrets" && event.ObjectRef.Name == "vault":
				secret = &event
			case event.ObjectRef.Resource == "configmaps" && event.ObjectRef.Name == "settings":
				configMap = &event
			}
		}
		return secret != nil && configMap != nil, nil
	})
	if secret.User.Username != who || secret.Level != "Metadata" {
		t.Errorf("the Secret's event: user %q level %s, want %q at Metadata", secret.User.Username, secret.Level, who)
	}
	if configMap.Level != "Metadata" || len(configMap.RequestObject) != 0 {
		t.Errorf("the ConfigMap's event: level %s with a body of %d bytes, want Metadata and none", configMap.Level, len(configMap.RequestObject))
	}
	for _, leak := range []string{plaintext, base64.StdEncoding.EncodeToString([]byte(plaintext)), "teal"} {
		if strings.Contains(string(raw), leak) {
			t.Errorf("the audit log holds %q", leak)
		}
	}
	if strings.Contains(string(raw), `"requestURI":"/readyz`) {
		t.Error("the audit log records readiness checks")
	}

	// A write elsewhere carries the request's body.
	server.MustKubectl("create", "serviceaccount", "builder")
	harness.Poll(t, 30*time.Second, "the ServiceAccount's creation with its body", func(context.Context) (bool, error) {
		raw, _ = os.ReadFile(path)
		for _, line := range strings.Split(string(raw), "\n") {
			var event auditEvent
			if json.Unmarshal([]byte(line), &event) == nil && event.ObjectRef != nil && event.ObjectRef.Name == "builder" &&
				event.Verb == "create" && event.Level == "Request" && strings.Contains(string(event.RequestObject), `"builder"`) {
				return true, nil
			}
		}
		return false, nil
	})
	checkPrivateFiles(t, server.DataDir, "logs/audit.log")

	// The webhook got the same events, in batches, without the value.
	harness.Poll(t, 60*time.Second, "the Secret's creation at the audit webhook", func(context.Context) (bool, error) {
		return sink.has(func(e auditEvent) bool {
			return e.Verb == "create" && e.ObjectRef != nil && e.ObjectRef.Resource == "secrets" && e.ObjectRef.Name == "vault" &&
				e.User.Username == who && e.Level == "Metadata"
		}), nil
	})
	if leaked := sink.received(plaintext) || sink.received(base64.StdEncoding.EncodeToString([]byte(plaintext))); leaked {
		t.Error("the audit webhook received the Secret's value")
	}
}

// auditSink is a remote audit backend: an HTTPS endpoint that takes the
// API server's batches (audit.k8s.io/v1 EventList).
type auditSink struct {
	kubeconfig string
	mu         sync.Mutex
	events     []auditEvent
	bodies     []string
}

func startAuditSink(t *testing.T) *auditSink {
	sink := &auditSink{}
	server := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var list struct {
			Items []auditEvent `json:"items"`
		}
		if err := json.Unmarshal(body, &list); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		sink.mu.Lock()
		sink.events = append(sink.events, list.Items...)
		sink.bodies = append(sink.bodies, string(body))
		sink.mu.Unlock()
	}))
	t.Cleanup(server.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: server.Certificate().Raw})
	kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: sink
  cluster: {server: %q, certificate-authority-data: %s}
contexts:
- name: sink
  context: {cluster: sink, user: sink}
users:
- name: sink
  user: {}
current-context: sink
`, server.URL+"/events", base64.StdEncoding.EncodeToString(ca))
	sink.kubeconfig = filepath.Join(t.TempDir(), "audit-webhook.kubeconfig")
	if err := os.WriteFile(sink.kubeconfig, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	return sink
}

func (s *auditSink) has(match func(auditEvent) bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.ContainsFunc(s.events, match)
}

func (s *auditSink) received(text string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.ContainsFunc(s.bodies, func(body string) bool { return strings.Contains(body, text) })
}
