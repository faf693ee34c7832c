package join

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

const testBootstrap = "abcdef.0123456789abcdef"

func TestSealedKeysOpenOnlyWithTheirToken(t *testing.T) {
	src := t.TempDir()
	for _, name := range []string{"ca.crt", "ca.key", "sa.key", "etcd/ca.key"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, name)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, name), []byte("content of "+name), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Not a shared key: never sealed.
	if err := os.WriteFile(filepath.Join(src, "apiserver.key"), []byte("leaf"), 0o600); err != nil {
		t.Fatal(err)
	}
	sealed, err := SealKeys(src, testBootstrap)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("content of")) {
		t.Fatal("sealed keys contain plaintext")
	}
	if err := OpenKeys(sealed, "abcdef.ffffffffffffffff", t.TempDir()); err == nil {
		t.Fatal("keys opened with another token's secret")
	}
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	if err := OpenKeys(tampered, testBootstrap, t.TempDir()); err == nil {
		t.Fatal("tampered keys opened")
	}
	dst := t.TempDir()
	if err := OpenKeys(sealed, testBootstrap, dst); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ca.crt", "ca.key", "sa.key", "etcd/ca.key"} {
		got, err := os.ReadFile(filepath.Join(dst, name))
		if err != nil || string(got) != "content of "+name {
			t.Fatalf("%s: %q, %v", name, got, err)
		}
		if info, _ := os.Stat(filepath.Join(dst, name)); info.Mode().Perm() != 0o600 {
			t.Fatalf("%s is %v, want 0600", name, info.Mode().Perm())
		}
	}
	if _, err := os.Stat(filepath.Join(dst, "apiserver.key")); !os.IsNotExist(err) {
		t.Fatal("a leaf key travelled with the shared keys")
	}
}
