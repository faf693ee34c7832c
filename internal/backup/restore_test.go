package backup

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/monokube/monokube/internal/datadir"
)

// The launcher unpacks the program into <data-dir>/payload before restore
// runs as root: a data dir holding only that is the empty one users have.
func TestRestoreIntoADataDirHoldingOnlyThePayload(t *testing.T) {
	archive := writeTestArchive(t)
	layout, _ := datadir.New(filepath.Join(t.TempDir(), "new"))
	program := filepath.Join(layout.Dir, datadir.PayloadDirName, "0123abcd", "monokube")
	if err := os.MkdirAll(filepath.Dir(program), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(program, []byte("program"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Air-gap image archives put there before the first start stay too.
	if err := os.MkdirAll(layout.ImagesDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(archive, layout); err != nil {
		t.Fatalf("restore into a data dir with only the payload: %v", err)
	}
	if raw, err := os.ReadFile(layout.DBFile()); err != nil || string(raw) != "database" {
		t.Fatalf("state.db after restore: %q, %v", raw, err)
	}
	if _, err := os.Stat(program); err != nil {
		t.Fatalf("the payload is gone after restore: %v", err)
	}
	names, _ := layout.StateEntries()
	for _, name := range names {
		if strings.HasPrefix(name, ".restore") {
			t.Errorf("restore left %s behind", name)
		}
	}
	if err := layout.CheckNoPartialRestore(); err != nil {
		t.Errorf("a finished restore is taken for a partial one: %v", err)
	}
}

func TestRestoreIntoAnAbsentDataDir(t *testing.T) {
	layout, _ := datadir.New(filepath.Join(t.TempDir(), "a", "b"))
	if _, err := Restore(writeTestArchive(t), layout); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(layout.Dir); err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("data dir after restore: %v %v", info, err)
	}
}

func TestRestoreRefusesStateAndPartialRestores(t *testing.T) {
	archive := writeTestArchive(t)
	layout, _ := datadir.New(t.TempDir())
	if err := os.Mkdir(layout.PKIDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(archive, layout); err == nil || !strings.Contains(err.Error(), "not empty (it holds pki)") {
		t.Fatalf("restore over a data dir with pki/: %v", err)
	}
	if _, err := os.Stat(layout.DBFile()); err == nil {
		t.Fatal("a refused restore wrote state.db")
	}

	// A restore stopped while moving files: the marker stays, and both a
	// start and another restore refuse, naming it.
	if err := os.WriteFile(layout.RestoreMarker(), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := layout.CheckNoPartialRestore(); err == nil || !strings.Contains(err.Error(), "did not finish") {
		t.Fatalf("a start on a partial restore: %v", err)
	}
	if _, err := Restore(archive, layout); err == nil || !strings.Contains(err.Error(), "did not finish") {
		t.Fatalf("a restore over a partial restore: %v", err)
	}
}

// A staging dir left by a restore killed before its moves is only a
// partial unpack of the archive: the next restore removes it.
func TestRestoreRemovesAnEarlierStagingDir(t *testing.T) {
	layout, _ := datadir.New(t.TempDir())
	leftover := filepath.Join(layout.Dir, stagingPrefix+"123")
	if err := os.MkdirAll(filepath.Join(leftover, "archive"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(writeTestArchive(t), layout); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(leftover); err == nil {
		t.Fatal("the earlier staging dir is still there")
	}
}
