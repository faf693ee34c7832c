package payload

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// defaultDataDir is config.DefaultDataDir (a test checks), not imported:
// the launcher stays small and starts in a millisecond.
const defaultDataDir = "/var/lib/monokube"

// dirName is datadir.PayloadDirName (a test checks): restore and the
// other "is the data dir empty" checks skip it.
const dirName = "payload"

// Root is where payloads are unpacked:
//   - MONOKUBE_PAYLOAD_DIR when set (the tests share one unpack);
//   - for root, <data-dir>/payload, the data dir being --data-dir on the
//     command line, else MONOKUBE_DATA_DIR, else /var/lib/monokube;
//   - for other users, who run client commands (version, kubectl), their
//     cache dir: $XDG_CACHE_HOME/monokube or ~/.cache/monokube, or, for a
//     user without a writable home (Debian's nobody has /nonexistent),
//     <tmp>/monokube-<uid>.
func Root(args []string) (string, error) {
	if dir := os.Getenv("MONOKUBE_PAYLOAD_DIR"); dir != "" {
		return dir, nil
	}
	if uid := os.Geteuid(); uid != 0 {
		cache, err := os.UserCacheDir()
		return userRoot(cache, err, os.TempDir(), uid)
	}
	return filepath.Join(dataDir(args), dirName), nil
}

// userRoot is cache/monokube if it can be made, else a directory of the
// user's own in the temporary dir. Anyone can create names there, so one
// that is not a directory owned by uid and closed to others is refused:
// another user could swap the program unpacked in it.
func userRoot(cache string, cacheErr error, tempDir string, uid int) (string, error) {
	if cacheErr == nil {
		dir := filepath.Join(cache, "monokube")
		if os.MkdirAll(dir, 0o700) == nil {
			return dir, nil
		}
	}
	dir := filepath.Join(tempDir, fmt.Sprintf("monokube-%d", uid))
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("no cache dir to unpack into (home not writable): %w", err)
	}
	info, err := os.Lstat(dir)
	if err != nil {
		return "", fmt.Errorf("unpack dir: %w", err)
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !info.IsDir() || !ok || int(st.Uid) != uid || info.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s is not a directory of this user's closed to others (%s); remove it or set XDG_CACHE_HOME", dir, info.Mode())
	}
	return dir, nil
}

// dataDir finds --data-dir the way monokube's commands take it.
func dataDir(args []string) string {
	for i, arg := range args {
		if arg == "--" {
			break
		}
		if arg == "--data-dir" && i+1 < len(args) {
			return args[i+1]
		}
		if value, ok := strings.CutPrefix(arg, "--data-dir="); ok {
			return value
		}
	}
	if dir := os.Getenv("MONOKUBE_DATA_DIR"); dir != "" {
		return dir
	}
	return defaultDataDir
}
