package integration

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/cert"

	"github.com/monokube/monokube/internal/join"
	"github.com/monokube/monokube/test/harness"
)

// TestJoinTokenLifecycle creates, lists, uses, invalidates and expires
// join tokens against a real server; the API server's own bootstrap token
// authenticator is the judge of whether a token still works.
func TestJoinTokenLifecycle(t *testing.T) {
	server := harness.NewServer(t, "")
	server.StartReady()

	create := func(args ...string) join.Token {
		t.Helper()
		stdout, stderr, err := server.Run(append([]string{"token", "create"}, args...)...)
		if err != nil {
			t.Fatalf("token create: %v\n%s", err, stderr)
		}
		token, err := join.Parse(stdout)
		if err != nil || strings.Count(strings.TrimSpace(stdout), "\n") > 0 {
			t.Fatalf("stdout is not exactly one token (%v): %q", err, stdout)
		}
		return token
	}

	worker := create("--role=worker", "--expiry=1h")
	if want := "https://127.0.0.1:" + strconv.Itoa(server.Port); len(worker.Servers) != 1 || worker.Servers[0] != want {
		t.Errorf("token servers %v, want [%s]", worker.Servers, want)
	}
	ca, err := cert.CertsFromFile(server.DataDir + "/pki/ca.crt")
	if err != nil {
		t.Fatal(err)
	}
	if err := worker.VerifyCA(ca[0]); err != nil {
		t.Errorf("token does not pin this cluster's CA: %v", err)
	}
	user, groups, err := whoami(server, worker.Bootstrap)
	if err != nil {
		t.Fatalf("fresh token not accepted by the API server: %v", err)
	}
	if user != "system:bootstrap:"+worker.ID() || !contains(groups, "system:bootstrappers:monokube:worker") {
		t.Errorf("token authenticates as %s %v", user, groups)
	}
	stdout, _, err := server.Run("token", "list")
	if err != nil || !strings.Contains(stdout, worker.ID()) || !strings.Contains(stdout, "worker") {
		t.Fatalf("token list lacks %s (%v):\n%s", worker.ID(), err, stdout)
	}

	// Invalidated: gone from the list, refused by the API server.
	if _, stderr, err := server.Run("token", "invalidate", worker.ID()); err != nil {
		t.Fatalf("invalidate: %v\n%s", err, stderr)
	}
	// The API server caches a successful token check for up to 10 s.
	harness.Poll(t, 30*time.Second, "invalidated token refused", func(context.Context) (bool, error) {
		_, _, err := whoami(server, worker.Bootstrap)
		return apierrors.IsUnauthorized(err), nil
	})
	if _, stderr, err := server.Run("token", "invalidate", worker.ID()); err == nil || !strings.Contains(stderr, "no token with id") {
		t.Errorf("second invalidate: err %v, stderr %q", err, stderr)
	}

	// Expired: the cluster refuses it after its expiry, without our help.
	short := create("--role=controller", "--expiry=3s")
	harness.Poll(t, 30*time.Second, "expired token refused", func(context.Context) (bool, error) {
		_, _, err := whoami(server, short.Bootstrap)
		return apierrors.IsUnauthorized(err), nil
	})
	stdout, stderr, err := server.Run("token", "list")
	if err != nil {
		t.Fatalf("token list after expiry: %v\n%s", err, stderr)
	}
	if strings.Contains(stdout, short.ID()) {
		t.Errorf("expired token still listed:\n%s", stdout)
	}
	if _, stderr, err := server.Run("token", "create", "--role=admin"); err == nil || !strings.Contains(stderr, "--role must be") {
		t.Errorf("bad role accepted: %v %s", err, stderr)
	}
}

// whoami asks the API server who a bearer token is.
func whoami(server *harness.Server, bearer string) (string, []string, error) {
	ca, err := os.ReadFile(server.DataDir + "/pki/ca.crt")
	if err != nil {
		return "", nil, err
	}
	client, err := kubernetes.NewForConfig(&rest.Config{
		Host:            "https://127.0.0.1:" + strconv.Itoa(server.Port),
		BearerToken:     bearer,
		TLSClientConfig: rest.TLSClientConfig{CAData: ca},
		Timeout:         5 * time.Second,
	})
	if err != nil {
		return "", nil, err
	}
	review, err := client.AuthenticationV1().SelfSubjectReviews().Create(context.Background(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return "", nil, err
	}
	return review.Status.UserInfo.Username, review.Status.UserInfo.Groups, nil
}

func contains(items []string, want string) bool {
	for _, item := range items {
		if item == want {
			return true
		}
	}
	return false
}
