package join

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/util/cert"
)

func validToken() Token {
	return Token{Role: RoleWorker, Servers: []string{"https://10.0.0.1:6443"}, CAHash: "sha256:" + strings.Repeat("ab", 32), Bootstrap: "abcdef.0123456789abcdef"}
}

func TestTokenRoundTrips(t *testing.T) {
	expiring := validToken()
	expiring.Role = RoleController
	expiring.Servers = append(expiring.Servers, "https://[fd00::1]:7443")
	// Nanoseconds and a zone other than UTC must survive too.
	expiring.Expires = time.Date(2031, 2, 3, 4, 5, 6, 789, time.FixedZone("CET", 3600))
	for name, token := range map[string]Token{"no expiry": validToken(), "expiry": expiring} {
		t.Run(name, func(t *testing.T) {
			parsed, err := Parse("  " + token.String() + "\n")
			if err != nil {
				t.Fatal(err)
			}
			// Expires is compared as an instant; every other field exactly.
			if !parsed.Expires.Equal(token.Expires) {
				t.Errorf("Expires %s, want %s", parsed.Expires, token.Expires)
			}
			gotRest, wantRest := parsed, token
			gotRest.Expires, wantRest.Expires = time.Time{}, time.Time{}
			if !reflect.DeepEqual(gotRest, wantRest) {
				t.Errorf("round trip changed the token:\n got  %+v\n want %+v", parsed, token)
			}
			if parsed.ID() != "abcdef" {
				t.Errorf("ID() = %q, want abcdef", parsed.ID())
			}
		})
	}
}

func TestParseExplainsBadTokens(t *testing.T) {
	good := validToken().String()
	mutate := func(change func(*Token)) string {
		token := validToken()
		change(&token)
		return token.String()
	}
	cases := []struct {
		name, text, want string
	}{
		{"empty", "", "the token is empty"},
		{"not ours", "K10abc::server:secret", `should start with "MK1."`},
		{"truncated", good[:len(good)/2], "garbled or truncated"},
		{"garbled", good[:10] + "!!!" + good[13:], "garbled or truncated"},
		{"no server", mutate(func(t *Token) { t.Servers = nil }), "names no server"},
		{"plain http", mutate(func(t *Token) { t.Servers = []string{"http://10.0.0.1:6443"} }), "not an https URL"},
		{"no pin", mutate(func(t *Token) { t.CAHash = "" }), "no valid CA pin"},
		{"bad secret", mutate(func(t *Token) { t.Bootstrap = "abc.def" }), "secret is malformed"},
		{"bad role", mutate(func(t *Token) { t.Role = "admin" }), `unknown role "admin"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.text)
			if err == nil || !errors.Is(err, ErrGarbled) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Parse = %v, want an ErrGarbled mentioning %q", err, c.want)
			}
		})
	}
}

func TestVerifyCARefusesAnotherCluster(t *testing.T) {
	ours, theirs := newCA(t), newCA(t)
	token := validToken()
	token.CAHash = CAHash(ours)
	if err := token.VerifyCA(ours); err != nil {
		t.Fatalf("own CA refused: %v", err)
	}
	if err := token.VerifyCA(theirs); err == nil || !strings.Contains(err.Error(), "another cluster") {
		t.Fatalf("foreign CA accepted or unclear: %v", err)
	}
}

func newCA(t *testing.T) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := cert.NewSelfSignedCACert(cert.Config{CommonName: "test-ca"}, key)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestTokenExpiryTravelsWithTheToken(t *testing.T) {
	token := validToken()
	if token.Expired(time.Now()) {
		t.Fatal("a token without expiry reads as expired")
	}
	token.Expires = time.Now().Add(-time.Second).UTC().Truncate(time.Second)
	parsed, err := Parse(token.String())
	if err != nil {
		t.Fatal(err)
	}
	if !parsed.Expires.Equal(token.Expires) || !parsed.Expired(time.Now()) {
		t.Fatalf("expiry lost or not honoured: %v", parsed.Expires)
	}
	if parsed.Expired(token.Expires.Add(-time.Minute)) {
		t.Fatal("expired before its time")
	}
}
