package backup

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestPruneKeepsTheNewestScheduledAndEveryManualBackup(t *testing.T) {
	dir := t.TempDir()
	names := []string{
		"scheduled-20261130T000000.000Z.tar.gz", "scheduled-20261130T120000.000Z.tar.gz",
		"scheduled-20261201T000000.000Z.tar.gz", "monokube-backup-20261101T000000.000Z.tar.gz",
	}
	for _, name := range names {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := Prune(dir, 2); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	var left []string
	for _, e := range entries {
		left = append(left, e.Name())
	}
	want := []string{"monokube-backup-20261101T000000.000Z.tar.gz", "scheduled-20261130T120000.000Z.tar.gz", "scheduled-20261201T000000.000Z.tar.gz"}
	if !slices.Equal(left, want) {
		t.Fatalf("after Prune(2): %v, want %v", left, want)
	}
}
