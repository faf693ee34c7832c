package sysinfo

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/monokube/monokube/internal/bundle"
	"github.com/monokube/monokube/internal/nettools"
)

// Host is what the checks read; tests give them a host of their own.
type Host interface {
	ReadFile(path string) (string, error)
	Exists(path string) bool
	// BundledTools are the network tools this binary carries.
	BundledTools() []string
	KernelRelease() string
	// FreeBytes is the free space of the filesystem holding path (or its
	// nearest existing parent).
	FreeBytes(path string) (uint64, error)
	// Listen reports whether a TCP port can be bound on all addresses.
	Listen(port int) error
	// InotifyInstances counts the inotify instances open in processes of
	// this user, which fs.inotify.max_user_instances limits.
	InotifyInstances() int
}

type realHost struct{}

func (realHost) ReadFile(path string) (string, error) {
	raw, err := os.ReadFile(path)
	return string(raw), err
}

func (realHost) Exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func (realHost) BundledTools() []string {
	if !bundle.HasNetTools() {
		return nil
	}
	return nettools.Names()
}

func (realHost) KernelRelease() string {
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		return ""
	}
	return unix.ByteSliceToString(uts.Release[:])
}

func (realHost) FreeBytes(path string) (uint64, error) {
	for {
		var st unix.Statfs_t
		err := unix.Statfs(path, &st)
		if err == nil {
			return st.Bavail * uint64(st.Bsize), nil
		}
		if !errors.Is(err, unix.ENOENT) || path == "/" {
			return 0, err
		}
		path = filepath.Dir(path)
	}
}

func (realHost) Listen(port int) error {
	listener, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return err
	}
	return listener.Close()
}

// sysctl reads a /proc/sys value as an integer; ok is false when absent.
func sysctl(h Host, path string) (value int, ok bool) {
	raw, err := h.ReadFile(filepath.Join("/proc/sys", path))
	if err != nil {
		return 0, false
	}
	value, err = strconv.Atoi(strings.TrimSpace(raw))
	return value, err == nil
}

func (realHost) InotifyInstances() int {
	uid := uint32(os.Getuid())
	procs, _ := os.ReadDir("/proc")
	count := 0
	for _, proc := range procs {
		if _, err := strconv.Atoi(proc.Name()); err != nil {
			continue
		}
		// A process may end between the listing and here.
		info, err := os.Stat(filepath.Join("/proc", proc.Name()))
		if err != nil {
			continue
		}
		if stat, ok := info.Sys().(*syscall.Stat_t); !ok || stat.Uid != uid {
			continue
		}
		fdDir := filepath.Join("/proc", proc.Name(), "fd")
		fds, _ := os.ReadDir(fdDir)
		for _, fd := range fds {
			if target, _ := os.Readlink(filepath.Join(fdDir, fd.Name())); target == "anon_inode:inotify" {
				count++
			}
		}
	}
	return count
}
