package harness

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	_ "modernc.org/sqlite" // the driver kine uses, to check state.db

	"github.com/monokube/monokube/internal/node"
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

// evictionPercent is the kubelet's nodefs/imagefs.available eviction
// threshold monokube sets.
const evictionPercent = node.DiskEvictionPercent

// suiteHeadroom is what a suite's nodes write above that threshold: every
// node unpacks its own payload (about 560 MB) and imports the images.
const suiteHeadroom = 8 << 30

// diskShortage says why the disk holding dir is too full for nodes to run
// on it, or "" when it is not. Below the threshold the kubelets report
// DiskPressure, evict pods and garbage-collect images no registry can give
// back, and tests fail far from the cause (a CI run lost a three-node
// walk-through that way). The size is the file system's whole size, as the
// kubelet counts it, and the space is what root may use (statfs bavail).
func diskShortage(dir string) string {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		return ""
	}
	size := fs.Blocks * uint64(fs.Bsize)
	available := fs.Bavail * uint64(fs.Bsize)
	need := size*evictionPercent/100 + suiteHeadroom
	if available >= need {
		return ""
	}
	const gib = 1 << 30
	return fmt.Sprintf("the file system of %s has %.1f GiB available of %.1f GiB (%.1f%%): kubelets evict pods and remove images below %d%% (%.1f GiB), and these tests write about %d GiB above that; free %.1f GiB and run again",
		dir, float64(available)/gib, float64(size)/gib, 100*float64(available)/float64(size), evictionPercent,
		float64(size*evictionPercent/100)/gib, suiteHeadroom/gib, float64(need-available)/gib)
}

// StoredSecrets reads the running server's SQLite file directly, as
// someone with the disk would: every Secret's newest stored value by its
// datastore key. kine keeps older revisions until it compacts; those are
// not what the datastore holds for the Secret.
func (s *Server) StoredSecrets() map[string][]byte {
	s.t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(s.DataDir, "db", "state.db")+"?mode=ro")
	if err != nil {
		s.t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT k.name, k.value FROM kine k
		JOIN (SELECT MAX(id) AS id FROM kine WHERE name LIKE '/registry/secrets/%' GROUP BY name) newest ON k.id = newest.id
		WHERE k.deleted = 0`)
	if err != nil {
		s.t.Fatalf("read state.db: %v", err)
	}
	defer rows.Close()
	stored := map[string][]byte{}
	for rows.Next() {
		var name string
		var value []byte
		if err := rows.Scan(&name, &value); err != nil {
			s.t.Fatal(err)
		}
		stored[name] = value
	}
	if err := rows.Err(); err != nil {
		s.t.Fatal(err)
	}
	return stored
}
