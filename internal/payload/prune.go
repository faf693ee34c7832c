package payload

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// RemoveUnused removes, beside keep, the unpacks under root that belong to
// other builds (a directory with a .complete marker) and leftovers of
// unpacks that crashed (<name>.tmp), about 190 MB per build in a payload
// root. An unpack that a running process executes from (a server not
// restarted since the upgrade, a containerd shim of it) stays: its files
// are still exec'd. Callers hold the lock under which root is unpacked
// into, so no unpack is in progress.
func RemoveUnused(root, keep string) (removed []string, err error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	runningFrom := executableDirs()
	var errs []error
	for _, entry := range entries {
		dir := filepath.Join(root, entry.Name())
		if !entry.IsDir() || dir == keep || runningFrom(dir) {
			continue
		}
		if !strings.HasSuffix(entry.Name(), ".tmp") && !complete(dir) {
			continue // not an unpack
		}
		if err := os.RemoveAll(dir); err != nil {
			errs = append(errs, fmt.Errorf("remove the unpack of an earlier build: %w", err))
			continue
		}
		removed = append(removed, dir)
	}
	return removed, errors.Join(errs...)
}

// executableDirs reports whether a running process's executable is in a
// directory. Processes this user may not inspect are not seen; for root
// that is none, and a user's cache dir is only that user's.
func executableDirs() func(dir string) bool {
	var executables []string
	procs, _ := os.ReadDir("/proc")
	for _, proc := range procs {
		if exe, err := os.Readlink(filepath.Join("/proc", proc.Name(), "exe")); err == nil {
			executables = append(executables, strings.TrimSuffix(exe, " (deleted)"))
		}
	}
	return func(dir string) bool {
		for _, exe := range executables {
			if strings.HasPrefix(exe, dir+string(filepath.Separator)) {
				return true
			}
		}
		return false
	}
}
