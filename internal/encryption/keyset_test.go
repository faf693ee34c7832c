package encryption

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/server/options/encryptionconfig"
	"k8s.io/apiserver/pkg/storage/value"
)

// TestRenderedConfigIsUpstreams loads what Render writes with the API
// server's own loader, for every provider that needs no plugin, and checks
// that the first key writes and every key reads.
func TestRenderedConfigIsUpstreams(t *testing.T) {
	for _, provider := range []string{ProviderSecretbox, ProviderAESCBC, ProviderAESGCM} {
		t.Run(provider, func(t *testing.T) {
			old, err := NewKey(Settings{Provider: ProviderSecretbox}, nil)
			if err != nil {
				t.Fatal(err)
			}
			key, err := NewKey(Settings{Provider: provider}, []Key{old})
			if err != nil {
				t.Fatal(err)
			}
			if key.Name != "monokube-2" {
				t.Fatalf("second key named %q, want monokube-2", key.Name)
			}
			dir := t.TempDir()
			files := Files{Dir: dir}
			ctx := context.Background()
			// Written with the old key only, then read with both.
			stored := transform(t, ctx, files, []Key{old}, nil)
			if !strings.HasPrefix(string(stored), "k8s:enc:secretbox:v1:monokube-1:") {
				t.Fatalf("old key wrote %q", stored[:40])
			}
			again := transform(t, ctx, files, []Key{key, old}, stored)
			want := "k8s:enc:" + provider + ":v1:monokube-2:"
			if !strings.HasPrefix(string(again), want) {
				t.Fatalf("after the rotation the write is %q, want prefix %q", again[:40], want)
			}
			parsed, err := files.Keys()
			if err != nil || len(parsed) != 2 || parsed[0] != key || parsed[1] != old {
				t.Fatalf("Keys() = %+v, %v; want the two keys back, write key first", parsed, err)
			}
		})
	}
}

// transform writes keys as the config, reads stored (when given) with
// upstream's transformers and writes it again; it returns what would be
// stored.
func transform(t *testing.T, ctx context.Context, files Files, keys []Key, stored []byte) []byte {
	t.Helper()
	if _, err := files.Write(keys, true); err != nil {
		t.Fatal(err)
	}
	config, err := encryptionconfig.LoadEncryptionConfig(ctx, files.Config(), false, "test")
	if err != nil {
		t.Fatalf("upstream refuses the config: %v", err)
	}
	transformer := config.Transformers[secretsResource()]
	dataCtx := value.DefaultContext("/registry/secrets/default/s")
	plain := []byte("the secret")
	if stored != nil {
		out, stale, err := transformer.TransformFromStorage(ctx, stored, dataCtx)
		if err != nil || string(out) != string(plain) {
			t.Fatalf("read back %q, %v", out, err)
		}
		if !stale {
			t.Error("a value under a read-only key is not reported stale: the re-encryption would skip it")
		}
	}
	out, err := transformer.TransformToStorage(ctx, plain, dataCtx)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestLegacyKeyFileIsKeyOne(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "encryption.key"), []byte("c2VjcmV0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := Files{Dir: dir}.Keys()
	if err != nil || len(keys) != 1 || keys[0].Name != "monokube-1" || keys[0].Secret != "c2VjcmV0" {
		t.Fatalf("legacy key read as %+v, %v", keys, err)
	}
}

func TestDisabledKeepsKeysReadable(t *testing.T) {
	key, _ := NewKey(Settings{Provider: ProviderAESGCM}, nil)
	data, err := Render([]Key{key}, false)
	if err != nil {
		t.Fatal(err)
	}
	identity, aes := strings.Index(string(data), "identity"), strings.Index(string(data), "aesgcm")
	if identity < 0 || aes < 0 || identity > aes {
		t.Fatalf("with encryption off identity must write and the key still read:\n%s", data)
	}
}

func TestKMSKeyNeedsEndpoint(t *testing.T) {
	if _, err := NewKey(Settings{Provider: ProviderKMS}, nil); err == nil {
		t.Fatal("a kms key without an endpoint was made")
	}
	key, err := NewKey(Settings{Provider: ProviderKMS, KMSEndpoint: "unix:///run/kms.sock", KMSTimeout: 3 * time.Second}, nil)
	if err != nil || key.Secret != "" {
		t.Fatalf("kms key %+v, %v: want no secret of ours", key, err)
	}
	data, err := Render([]Key{key}, true)
	if err != nil || !strings.Contains(string(data), "apiVersion: v2") || !strings.Contains(string(data), "unix:///run/kms.sock") {
		t.Fatalf("kms config:\n%s\n%v", data, err)
	}
	back, err := Parse(data)
	if err != nil || len(back) != 1 || back[0] != key {
		t.Fatalf("Parse = %+v, %v; want %+v", back, err, key)
	}
}

func TestSealedKeysOpenOnlyWithTheCAKey(t *testing.T) {
	key, _ := NewKey(Settings{Provider: ProviderSecretbox}, nil)
	sealed, err := seal([]byte("ca key one"), []Key{key})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(sealed), key.Secret) {
		t.Fatal("the key is readable in the sealed form")
	}
	if _, err := unseal([]byte("ca key two"), sealed); err == nil {
		t.Fatal("sealed keys opened with another CA key")
	}
	keys, err := unseal([]byte("ca key one"), sealed)
	if err != nil || len(keys) != 1 || keys[0] != key {
		t.Fatalf("unseal = %+v, %v", keys, err)
	}
}

func TestEveryRunningServerMustLoad(t *testing.T) {
	state := State{Servers: map[string]Record{
		"a":    {Address: "10.0.0.1", Generation: 3, Loaded: true},
		"b":    {Address: "10.0.0.2", Generation: 3, Loaded: false}, // file written, API server not reloaded yet
		"c":    {Address: "10.0.0.3", Generation: 2, Loaded: true},
		"gone": {Address: "10.0.0.9", Generation: 1, Loaded: true}, // stopped: not in the live list
	}}
	got := notLoaded(state, []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}, 3)
	if strings.Join(got, ",") != "10.0.0.2,10.0.0.3" {
		t.Fatalf("not loaded = %v, want 10.0.0.2 and 10.0.0.3", got)
	}
	if got := notLoaded(state, []string{"10.0.0.1"}, 3); len(got) != 0 {
		t.Fatalf("not loaded = %v with only the loaded server running", got)
	}
}

func TestServersMustAgreeOnTheProvider(t *testing.T) {
	state := State{Keys: []Key{{Name: "monokube-1", Provider: ProviderSecretbox}}, Servers: map[string]Record{
		"a":    {Address: "10.0.0.1", Settings: Settings{Provider: ProviderAESGCM}},
		"b":    {Address: "10.0.0.2", Settings: Settings{Provider: ProviderAESGCM}},
		"gone": {Address: "10.0.0.9", Settings: Settings{Provider: ProviderAESCBC}},
	}}
	if s, err := agreedSettings(state, []string{"10.0.0.1", "10.0.0.2"}); err != nil || s.Provider != ProviderAESGCM {
		t.Fatalf("agreed = %+v, %v; a stopped server's old settings must not count", s, err)
	}
	if _, err := agreedSettings(state, []string{"10.0.0.1", "10.0.0.9"}); err == nil || !strings.Contains(err.Error(), "disagree") {
		t.Fatalf("servers with different providers: err = %v", err)
	}
}

func secretsResource() schema.GroupResource { return schema.GroupResource{Resource: "secrets"} }

// During a CA rotation the keys are also sealed under the new CA key: a
// server that already holds it opens that copy, and no key change (which
// would reseal under one CA key only) is allowed until the rotation ends.
func TestKeysOpenOnEitherSideOfACARotation(t *testing.T) {
	key, _ := NewKey(Settings{Provider: ProviderSecretbox}, nil)
	sealed, _ := seal([]byte("old ca key"), []Key{key})
	next, _ := seal([]byte("new ca key"), []Key{key})
	cm := &corev1.ConfigMap{Data: map[string]string{dataGeneration: "1", dataStage: StageStart},
		BinaryData: map[string][]byte{dataKeys: sealed, dataKeysNext: next}}
	for _, caKey := range []string{"old ca key", "new ca key"} {
		state, err := decode(cm, []byte(caKey))
		if err != nil || len(state.Keys) != 1 || state.Keys[0] != key {
			t.Fatalf("with the %s: %+v, %v", caKey, state.Keys, err)
		}
	}
	state, _ := decode(cm, []byte("new ca key"))
	other, _ := NewKey(Settings{Provider: ProviderSecretbox}, state.Keys)
	state.Keys = append(state.Keys, other)
	if err := state.Save(context.Background(), nil, []byte("new ca key")); err == nil || !strings.Contains(err.Error(), "CA rotation") {
		t.Fatalf("a key change during a CA rotation: %v", err)
	}
}
