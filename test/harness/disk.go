package harness

import (
	"database/sql"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	_ "modernc.org/sqlite" // the driver kine uses, to check state.db
)

// SmallDataDir puts the server's data dir on a tmpfs of size ("1700m"),
// unmounted when the test ends: a disk a test can fill. A start demands
// 1 GiB free, and the launcher unpacks its payload (about 560 MB with Traefik) there.
func (s *Server) SmallDataDir(size string) {
	s.t.Helper()
	if err := os.MkdirAll(s.DataDir, 0o700); err != nil {
		s.t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", s.DataDir).CombinedOutput(); err != nil {
		s.t.Fatalf("mount tmpfs: %v\n%s", err, out)
	}
	s.t.Cleanup(func() { _ = exec.Command("umount", "-l", s.DataDir).Run() })
}

// FillDisk writes path until its file system has no space left.
func FillDisk(t testing.TB, path string) {
	t.Helper()
	file, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	chunk := make([]byte, 1<<20)
	for {
		if _, err := file.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v", path, err)
			}
			return
		}
	}
}

// CheckSQLiteIntegrity fails the test unless the stopped server's
// state.db passes SQLite's integrity check.
func (s *Server) CheckSQLiteIntegrity() {
	s.t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(s.DataDir, "db", "state.db"))
	if err != nil {
		s.t.Fatal(err)
	}
	defer db.Close()
	var integrity string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&integrity); err != nil || integrity != "ok" {
		s.t.Errorf("state.db integrity: %q, %v", integrity, err)
	}
}
