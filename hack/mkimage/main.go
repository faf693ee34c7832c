// Command mkimage builds a single-layer image archive from a directory. The
// build uses it for the bundled system images, tests for their own images.
//
//	go run ./hack/mkimage --rootfs DIR --ref monokube.io/pause:3.10 --entrypoint /pause --arch arm64 --out pause.tar
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/monokube/monokube/internal/images"
)

func main() {
	var spec images.Spec
	var entrypoint, out string
	flag.StringVar(&spec.RootFS, "rootfs", "", "root filesystem directory")
	flag.StringVar(&spec.Reference, "ref", "", "image reference (name:tag)")
	flag.StringVar(&entrypoint, "entrypoint", "", "entrypoint, space-separated")
	flag.StringVar(&out, "out", "", "docker-archive tarball to write")
	flag.StringVar(&spec.Architecture, "arch", runtime.GOARCH, "the image's architecture (amd64, arm64)")
	flag.Parse()
	if spec.RootFS == "" || spec.Reference == "" || out == "" {
		fmt.Fprintln(os.Stderr, "usage: mkimage --rootfs DIR --ref NAME:TAG [--entrypoint CMD] --out FILE")
		os.Exit(2)
	}
	if entrypoint != "" {
		spec.Entrypoint = strings.Fields(entrypoint)
	}
	if err := images.WriteArchive(out, spec); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}
