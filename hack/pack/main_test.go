package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The same launcher and payload packed twice, from other directories with
// other file times, give the same program: a release is reproducible.
func TestPackIsReproducible(t *testing.T) {
	pack1 := packTree(t, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	pack2 := packTree(t, time.Date(2027, 6, 7, 8, 9, 10, 0, time.UTC))
	if !bytes.Equal(pack1, pack2) {
		t.Fatal("two packs of the same tree gave different programs")
	}
}

func packTree(t *testing.T, when time.Time) []byte {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"launcher":                 "#!/bin/sh\n",
		"payload/monokube":         "program",
		"payload/bin/runc":         "runc",
		"payload/images/pause.tar": "image",
	}
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, when, when); err != nil {
			t.Fatal(err)
		}
	}
	to := filepath.Join(dir, "monokube")
	if err := pack(filepath.Join(dir, "launcher"), filepath.Join(dir, "payload"), 3, to); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(to)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
