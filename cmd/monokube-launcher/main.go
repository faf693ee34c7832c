// Command monokube-launcher is the monokube program users download (the
// build writes it as bin/monokube): it unpacks the payload appended to it
// once per build and runs the real monokube there with the same arguments
// and argv[0] (package payload).
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/monokube/monokube/internal/payload"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "monokube:", err)
		os.Exit(1)
	}
}

func run() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	file, err := os.Open(self)
	if err != nil {
		return err
	}
	found, err := payload.Find(file)
	if err != nil {
		return fmt.Errorf("%s: %w", self, err)
	}
	root, err := payload.Root(os.Args[1:])
	if err != nil {
		return err
	}
	dir, err := payload.Unpack(root, found, os.Stderr)
	file.Close()
	if err != nil {
		return err
	}
	program := filepath.Join(dir, "monokube")
	// The real program installs services that run this launcher, not its
	// own path, so that replacing the download upgrades them.
	env := append(os.Environ(), "MONOKUBE_LAUNCHER="+self)
	return syscall.Exec(program, os.Args, env)
}
