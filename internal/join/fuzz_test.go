package join

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// FuzzParse feeds the join-token parser arbitrary text: it must never
// panic, every refusal must say the token is garbled (ErrGarbled), and an
// accepted token must print and parse back to the same fields.
func FuzzParse(f *testing.F) {
	valid := Token{Role: RoleWorker, Servers: []string{"https://10.0.0.1:6443"}, CAHash: "sha256:" + strings.Repeat("ab", 32), Bootstrap: "abcdef.0123456789abcdef"}
	f.Add(valid.String())
	expiring := valid
	expiring.Expires = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Add(expiring.String())
	for _, seed := range []string{"", "MK1.", "MK1.e30", "MK1.!!!", "MK2.e30", "  MK1.eyJyb2xlIjoid29ya2VyIn0\n"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		token, err := Parse(text)
		if err != nil {
			if !errors.Is(err, ErrGarbled) {
				t.Fatalf("refusal without ErrGarbled: %v", err)
			}
			return
		}
		again, err := Parse(token.String())
		if err != nil {
			t.Fatalf("an accepted token does not parse again: %v", err)
		}
		if !reflect.DeepEqual(token, again) && !(token.Expires.Equal(again.Expires) && reflect.DeepEqual(withoutExpiry(token), withoutExpiry(again))) {
			t.Fatalf("round trip changed the token: %+v → %+v", token, again)
		}
	})
}

func withoutExpiry(t Token) Token {
	t.Expires = time.Time{}
	return t
}
