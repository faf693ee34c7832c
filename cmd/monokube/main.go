// Command monokube is a Kubernetes distribution in one binary. This file
// only picks the command and runs it; everything else lives in internal/.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/monokube/monokube/internal/cli"
	"github.com/monokube/monokube/internal/service"
)

func main() {
	// Multicall: a link named kubectl behaves as the embedded kubectl.
	if filepath.Base(os.Args[0]) == "kubectl" {
		cli.RunKubectl(os.Args[1:])
	}
	// Before any embedded component can tell systemd it is ready.
	service.TakeNotifySocket()
	if err := cli.NewRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}
