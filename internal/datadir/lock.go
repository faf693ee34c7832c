package datadir

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/klog/v2"
)

// exitingHolderWait bounds how long Lock waits for a lock whose recorded
// holder has already exited: a service manager (or a test) restarts the
// node the moment the old process is reaped, and the lock can outlive that
// by a moment (CI saw it once, after kube-proxy ended a node with os.Exit).
const exitingHolderWait = 15 * time.Second

// Lock takes an exclusive, non-blocking flock on the lock file
// so that a second server on the same data dir fails at once instead of
// corrupting the first one's state. The kernel drops the lock when the
// process dies, even by kill -9, so a stale file never blocks a restart.
// Only when the process the file names is gone does Lock wait, briefly,
// for the lock to follow it.
func (l Layout) Lock() (release func(), err error) {
	path := l.LockFile()
	file, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	deadline := time.Now().Add(exitingHolderWait)
	for waited := false; ; waited = true {
		err = syscall.Flock(int(file.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		pid, running := l.Holder()
		if running || time.Now().After(deadline) {
			file.Close()
			holder := "unknown"
			if pid > 0 {
				holder = strconv.Itoa(pid)
			}
			return nil, fmt.Errorf("data dir %s is in use by another monokube process (pid %s); stop it or use another --data-dir", l.Dir, holder)
		}
		if !waited {
			klog.InfoS("Waiting for the previous process to release the data dir", "dir", l.Dir, "pid", pid)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := file.Truncate(0); err == nil {
		_, _ = file.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { file.Close() }, nil
}

// Claim readies the data dir for the server or worker that runs on it:
// created, or made, closed to others (an older launcher's unpack created
// it 0755), locked for this process, and refused when a restore into it
// did not finish. release drops the lock.
func (l Layout) Claim() (release func(), err error) {
	if err := os.MkdirAll(l.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	if err := os.Chmod(l.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("close the data dir to others: %w", err)
	}
	release, err = l.Lock()
	if err != nil {
		return nil, err
	}
	if err := l.CheckNoPartialRestore(); err != nil {
		release()
		return nil, err
	}
	return release, nil
}

// Holder is the process that holds the data dir's lock: the running
// server or worker. It reads the PID the lock file records and checks
// that this process has the lock file open, without taking the lock
// (which could make a starting node fail).
func (l Layout) Holder() (pid int, running bool) {
	raw, err := os.ReadFile(l.LockFile())
	if err != nil {
		return 0, false
	}
	pid, err = strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return pid, false
	}
	for _, fd := range fds {
		if target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && target == l.LockFile() {
			return pid, true
		}
	}
	return pid, false
}
