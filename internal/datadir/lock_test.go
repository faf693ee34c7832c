package datadir

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// holdLock takes the data dir's lock through a second open file
// description, as another process would, and records pid as its holder.
func holdLock(t *testing.T, l Layout, pid int) *os.File {
	t.Helper()
	file, err := os.OpenFile(l.LockFile(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(file.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	if _, err := file.WriteString(strconv.Itoa(pid) + "\n"); err != nil {
		t.Fatal(err)
	}
	return file
}

func tempLayout(t *testing.T) Layout {
	t.Helper()
	l, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLockFailsAtOnceWhileItsHolderRuns(t *testing.T) {
	l := tempLayout(t)
	held := holdLock(t, l, os.Getpid())
	defer held.Close()
	began := time.Now()
	_, err := l.Lock()
	if err == nil || !strings.Contains(err.Error(), "in use by another monokube process (pid "+strconv.Itoa(os.Getpid())+")") {
		t.Fatalf("got %v, want the running holder named", err)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Fatalf("refused after %s; a running holder must be refused at once", took)
	}
}

// TestLockWaitsForAHolderThatHasExited: a restart right after the old
// process was reaped must not fail because the lock lags behind it.
func TestLockWaitsForAHolderThatHasExited(t *testing.T) {
	l := tempLayout(t)
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	held := holdLock(t, l, gone.Process.Pid)
	time.AfterFunc(500*time.Millisecond, func() { held.Close() })
	release, err := l.Lock()
	if err != nil {
		t.Fatalf("the lock was released 0.5 s later, yet: %v", err)
	}
	release()
	raw, _ := os.ReadFile(l.LockFile())
	if strings.TrimSpace(string(raw)) != strconv.Itoa(os.Getpid()) {
		t.Fatalf("lock file names %q, want this process", raw)
	}
}
