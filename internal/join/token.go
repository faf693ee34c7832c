// Package join is what both sides of a join agree on: the join token's
// format, the bootstrap tokens behind it, the identities nodes get and the
// cluster settings the server publishes. The server's side lives in
// server/nodejoin, the worker's in worker/bootstrap.
package join

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	bootstraputil "k8s.io/cluster-bootstrap/token/util"
)

// Roles a token can join as.
const (
	RoleWorker     = "worker"
	RoleController = "controller"
)

// tokenPrefix marks a monokube join token and its format version.
const tokenPrefix = "MK1."

// Token is everything a new node needs to trust and reach the cluster.
type Token struct {
	Role string `json:"role"`
	// Servers are the API server URLs to try, in order.
	Servers []string `json:"servers"`
	// CAHash pins the cluster CA ("sha256:<hex of its public key info>"),
	// so a node talking to an impostor server refuses it.
	CAHash string `json:"caHash"`
	// Bootstrap is the Kubernetes bootstrap token "<id>.<secret>"; the
	// cluster enforces its expiry and invalidation deletes it.
	Bootstrap string `json:"bootstrap"`
	// Expires is when the cluster stops accepting it (zero: never). It is
	// only a hint that lets a node tell "expired" from "invalidated"; the
	// cluster enforces the real expiry.
	Expires time.Time `json:"expires,omitzero"`
}

// Expired reports whether the token's expiry has passed on this clock.
func (t Token) Expired(now time.Time) bool { return !t.Expires.IsZero() && now.After(t.Expires) }

// String encodes the token for printing: "MK1." + base64url(JSON).
func (t Token) String() string {
	raw, _ := json.Marshal(t)
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
}

// ID is the bootstrap token's public id, as `token list` shows it.
func (t Token) ID() string { return strings.SplitN(t.Bootstrap, ".", 2)[0] }

// ErrGarbled is wrapped by every parse error, for callers that need to tell
// a bad token from a bad server.
var ErrGarbled = errors.New("not a valid monokube join token")

// Parse decodes and checks a printed token, saying what is wrong with it
// in terms a user understands.
func Parse(text string) (Token, error) {
	text = strings.TrimSpace(text)
	switch {
	case text == "":
		return Token{}, fmt.Errorf("%w: the token is empty", ErrGarbled)
	case !strings.HasPrefix(text, tokenPrefix):
		return Token{}, fmt.Errorf("%w: it should start with %q (create one with `monokube token create` on a server)", ErrGarbled, tokenPrefix)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(text, tokenPrefix))
	if err != nil {
		return Token{}, fmt.Errorf("%w: it is garbled or truncated (copy it again, whole): %v", ErrGarbled, err)
	}
	var token Token
	if err := json.Unmarshal(raw, &token); err != nil {
		return Token{}, fmt.Errorf("%w: it is garbled or truncated (copy it again, whole)", ErrGarbled)
	}
	if err := token.validate(); err != nil {
		return Token{}, fmt.Errorf("%w: %v", ErrGarbled, err)
	}
	return token, nil
}

func (t Token) validate() error {
	if t.Role != RoleWorker && t.Role != RoleController {
		return fmt.Errorf("unknown role %q", t.Role)
	}
	if len(t.Servers) == 0 {
		return errors.New("it names no server")
	}
	for _, server := range t.Servers {
		if u, err := url.Parse(server); err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("server %q is not an https URL", server)
		}
	}
	if !strings.HasPrefix(t.CAHash, "sha256:") || len(t.CAHash) != len("sha256:")+64 {
		return errors.New("it has no valid CA pin")
	}
	if !bootstraputil.IsValidBootstrapToken(t.Bootstrap) {
		return errors.New("its secret is malformed")
	}
	return nil
}

// CAHash is the pin of a CA certificate: the SHA-256 of its public key
// info, as kubeadm's discovery-token-ca-cert-hash.
func CAHash(ca *x509.Certificate) string {
	sum := sha256.Sum256(ca.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// VerifyCA checks that ca is the certificate the token pins.
func (t Token) VerifyCA(ca *x509.Certificate) error {
	if got := CAHash(ca); got != t.CAHash {
		return fmt.Errorf("the server's CA (%s) is not the one this token pins (%s): the token is for another cluster, or someone is impersonating the server", got, t.CAHash)
	}
	return nil
}
