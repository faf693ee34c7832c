package payload

import (
	"os"
	"path/filepath"
	"strings"
)

// defaultDataDir is config.DefaultDataDir (a test checks), not imported:
// the launcher stays small and starts in a millisecond.
const defaultDataDir = "/var/lib/monokube"

// Root is where payloads are unpacked:
//   - MONOKUBE_PAYLOAD_DIR when set (the tests share one unpack);
//   - for root, <data-dir>/payload, the data dir being --data-dir on the
//     command line, else MONOKUBE_DATA_DIR, else /var/lib/monokube;
//   - for other users, who run client commands (version, kubectl), their
//     cache dir: $XDG_CACHE_HOME/monokube or ~/.cache/monokube.
func Root(args []string) string {
	if dir := os.Getenv("MONOKUBE_PAYLOAD_DIR"); dir != "" {
		return dir
	}
	if os.Geteuid() != 0 {
		cache, err := os.UserCacheDir()
		if err != nil {
			cache = os.TempDir()
		}
		return filepath.Join(cache, "monokube")
	}
	return filepath.Join(dataDir(args), "payload")
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
