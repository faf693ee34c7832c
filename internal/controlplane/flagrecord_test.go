package controlplane

import (
	"os"
	"path/filepath"
	"testing"
)

// A server on etcd has no <data-dir>/run until the record makes it.
func TestFlagRecordMakesItsDirAndKeepsEveryComponent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "component-flags.json")
	record := &FlagRecord{Path: path}
	if err := record.Record("apiserver", Args{"profiling": "false"}); err != nil {
		t.Fatal(err)
	}
	if err := record.Record("scheduler", Args{"bind-address": "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	flags, err := ReadFlagRecord(path)
	if err != nil || flags["apiserver"]["profiling"] != "false" || flags["scheduler"]["bind-address"] != "127.0.0.1" {
		t.Fatalf("read back %v, %v", flags, err)
	}
	if info, err := os.Stat(filepath.Dir(path)); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("run dir: %v %v, want 0700", info, err)
	}
	var none *FlagRecord
	if err := none.Record("apiserver", Args{}); err != nil {
		t.Errorf("a nil record: %v", err)
	}
}
