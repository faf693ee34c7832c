// Command monokube-netexec is what the bundled network tools' names
// (iptables, nft, ipset, ...) link to: it runs the named tool with the
// loader and libraries carried beside it (package nettools). It stays a
// program of its own, apart from monokube, because kube-proxy and the CNI
// plugins run these tools often and it must start in a millisecond.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/monokube/monokube/internal/nettools"
)

func main() {
	self, err := os.Executable()
	if err == nil {
		err = nettools.Exec(filepath.Dir(self), filepath.Base(os.Args[0]), os.Args[1:])
	}
	fmt.Fprintf(os.Stderr, "%s (bundled by monokube): %v\n", filepath.Base(os.Args[0]), err)
	os.Exit(127)
}
