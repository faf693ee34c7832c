// Package fleet is `monokube cluster`: one file of hosts that deploys,
// grows, upgrades and resets a cluster, over SSH or on this machine in
// namespaces (the local provider).
package fleet

import (
	"context"
	"io"
	"os"
)

// Machine is one host as the fleet tool reaches it: over SSH, or a local
// node's namespaces. Every command runs as root (through sudo when the SSH
// user is not root).
type Machine interface {
	// Run runs a shell command line and returns its stdout; a failure's
	// error carries the exit status and stderr.
	Run(ctx context.Context, command string) (string, error)
	// Upload writes content to path with mode, atomically (a temporary file
	// beside it, then a rename), creating the directory.
	Upload(ctx context.Context, content io.Reader, path string, mode os.FileMode) error
	// Download copies the file at path into w.
	Download(ctx context.Context, path string, w io.Writer) error
	// String names the machine in progress lines ("root@10.0.0.5:22").
	String() string
	Close() error
}
