// Command volume-helper makes and removes the directories behind the
// local-path StorageClass on the node a volume lives on. The server runs it
// in a short pod on that node (it cannot reach another node's disk itself).
// It is built by our build and carried in the monokube binary as the image
// monokube.io/volume-helper.
//
//	volume-helper setup /storage/pvc-1_default_data
//	volume-helper teardown /storage/pvc-1_default_data
package main

import (
	"fmt"
	"os"
	"path/filepath"
)

// root is where the pod mounts the node's storage directory; the helper
// touches nothing else.
const root = "/storage"

func main() {
	if len(os.Args) != 3 {
		fail("usage: volume-helper setup|teardown /storage/<volume>")
	}
	dir := filepath.Clean(os.Args[2])
	if filepath.Dir(dir) != root || filepath.Base(dir) == "." || filepath.Base(dir) == ".." {
		fail("refusing %q: a volume is a directory directly below %s", os.Args[2], root)
	}
	switch os.Args[1] {
	case "setup":
		if err := os.Mkdir(dir, 0o777); err != nil && !os.IsExist(err) {
			fail("create %s: %v", dir, err)
		}
		// The mode is for every user a pod may run as; umask would narrow it.
		if err := os.Chmod(dir, 0o777); err != nil {
			fail("chmod %s: %v", dir, err)
		}
	case "teardown":
		if err := os.RemoveAll(dir); err != nil {
			fail("remove %s: %v", dir, err)
		}
	default:
		fail("unknown action %q (setup or teardown)", os.Args[1])
	}
	fmt.Println(os.Args[1], dir, "done")
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "volume-helper: "+format+"\n", args...)
	os.Exit(1)
}
