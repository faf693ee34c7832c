// Command e2eimages builds every image the upstream conformance tests run,
// under the exact references the suite asks for, as docker-archives a node
// imports: no registry is reachable from the test clusters.
//
//	go run ./hack/e2eimages --bin BIN --debian debian.tar \
//	    --kube-src $(go list -m -f '{{.Dir}}' k8s.io/kubernetes) --out DIR
//
// `make conformance-tools` builds the programs in BIN from pinned Go modules
// (and busybox from its upstream source); images that need a distribution
// userland (a shell, dig, curl, nginx) sit on one Debian layer made by
// mmdebstrap from Debian's packages, which every such image shares.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/monokube/monokube/internal/images"
)

const (
	e2eRegistry = "registry.k8s.io/e2e-test-images/"
	debianPath  = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// file is one file of an image's top layer: copied from a source path,
// written from content, a symlink when link is set, or a directory when path
// ends in a slash.
type file struct {
	path, from, content, link string
	mode                      os.FileMode
}

// alpineOSRelease is /etc/os-release of upstream's kitten image (Alpine 3.21).
const alpineOSRelease = `NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.21.3
PRETTY_NAME="Alpine Linux v3.21"
HOME_URL="https://alpinelinux.org/"
BUG_REPORT_URL="https://gitlab.alpinelinux.org/alpine/aports/-/issues"
`

// recipe is one image (or one image under several references).
type recipe struct {
	name    string
	spec    images.Spec
	debian  bool   // on the shared Debian layer
	on      string // and on the top layer of this earlier recipe
	busybox bool   // a busybox root filesystem instead
	files   []file
}

func recipes(bin, kubeSrc string) []recipe {
	// As upstream's agnhost image lays it out: the TLS pair porter and the
	// StatefulSet tests' readiness probe serve, netexec's upload dir.
	porter := filepath.Join(kubeSrc, "test/images/agnhost/porter")
	agnhost := []file{
		{path: "agnhost", from: filepath.Join(bin, "agnhost"), mode: 0o755},
		{path: "agnhost-2", link: "agnhost"},
		{path: "usr/local/bin/test-webserver", link: "/agnhost"},
		{path: "localhost.crt", from: filepath.Join(porter, "localhost.crt"), mode: 0o644},
		{path: "localhost.key", from: filepath.Join(porter, "localhost.key"), mode: 0o644},
		{path: "uploads/", mode: 0o755},
	}
	// kitten and nautilus are agnhost serving a picture and a JSON file.
	// The image-volume test mounts kitten and reads its /etc/os-release,
	// expecting upstream's Alpine base; the fixture carries that file as
	// upstream's image has it (Alpine's packages are not reachable here).
	webPage := func(name string) []file {
		html := filepath.Join(kubeSrc, "test/images", name, "html")
		return []file{
			{path: name + ".jpg", from: filepath.Join(html, name+".jpg"), mode: 0o644},
			{path: "data.json", from: filepath.Join(html, "data.json"), mode: 0o644},
			{path: "etc/os-release", content: alpineOSRelease, mode: 0o644},
		}
	}
	return []recipe{
		{name: "agnhost", debian: true, files: agnhost, spec: images.Spec{
			Reference: e2eRegistry + "agnhost:2.66.1", Aliases: []string{e2eRegistry + "agnhost:2.55"},
			Entrypoint: []string{"/agnhost"}, Cmd: []string{"pause"}}},
		{name: "kitten", debian: true, on: "agnhost", files: webPage("kitten"), spec: images.Spec{
			Reference: e2eRegistry + "kitten:1.8", Entrypoint: []string{"/agnhost"}, Cmd: []string{"test-webserver"}}},
		{name: "nautilus", debian: true, on: "agnhost", files: webPage("nautilus"), spec: images.Spec{
			Reference: e2eRegistry + "nautilus:1.8", Entrypoint: []string{"/agnhost"}, Cmd: []string{"test-webserver"}}},
		{name: "busybox", busybox: true, spec: images.Spec{
			Reference: e2eRegistry + "busybox:1.37.0-2", Cmd: []string{"sh"}, Env: []string{"PATH=/bin"}}},
		{name: "glibc-dns-testing", debian: true, spec: images.Spec{
			Reference: e2eRegistry + "glibc-dns-testing:2.1.1", Cmd: []string{"bash"}}},
		// nginx as the official image runs it: in the foreground, logging to
		// the container's output.
		{name: "nginx", debian: true, files: []file{
			{path: "var/log/nginx/access.log", link: "/dev/stdout"},
			{path: "var/log/nginx/error.log", link: "/dev/stderr"},
		}, spec: images.Spec{
			Reference: e2eRegistry + "nginx:1.27.0-2", Aliases: []string{e2eRegistry + "nginx:1.28.0-2"},
			Cmd: []string{"nginx", "-g", "daemon off;"}}},
		{name: "nonroot", debian: true, spec: images.Spec{
			Reference: e2eRegistry + "nonroot:1.5", User: "1234", Cmd: []string{"bash"}}},
		// nnp reports whether it gained privileges through its setuid bit.
		{name: "nonewprivs", debian: true, files: []file{
			{path: "usr/local/bin/nnp", from: filepath.Join(bin, "nonewprivs"), mode: 0o755 | os.ModeSetuid},
		}, spec: images.Spec{Reference: e2eRegistry + "nonewprivs:1.4", Cmd: []string{"nnp"}}},
		{name: "sample-apiserver", debian: true, files: []file{
			{path: "sample-apiserver", from: filepath.Join(bin, "sample-apiserver"), mode: 0o755},
		}, spec: images.Spec{Reference: e2eRegistry + "sample-apiserver:1.29.2", Entrypoint: []string{"/sample-apiserver"}}},
		{name: "etcd", debian: true, files: []file{
			{path: "usr/local/bin/etcd", from: filepath.Join(bin, "etcd"), mode: 0o755},
		}, spec: images.Spec{Reference: "registry.k8s.io/etcd:3.7.0-0", Cmd: []string{"/usr/local/bin/etcd"}}},
		{name: "pause", files: []file{
			{path: "pause", from: filepath.Join(bin, "pause"), mode: 0o755},
		}, spec: images.Spec{Reference: "registry.k8s.io/pause:3.10.2", Entrypoint: []string{"/pause"}}},
	}
}

func main() {
	var bin, debian, kubeSrc, out string
	flag.StringVar(&bin, "bin", "", "directory with agnhost, nonewprivs, sample-apiserver, etcd, pause and busybox")
	flag.StringVar(&debian, "debian", "", "Debian root filesystem tarball (mmdebstrap output), the shared layer")
	flag.StringVar(&kubeSrc, "kube-src", "", "k8s.io/kubernetes module directory (test/images sources)")
	flag.StringVar(&out, "out", "", "directory to write the archives into")
	flag.Parse()
	if bin == "" || debian == "" || kubeSrc == "" || out == "" {
		fmt.Fprintln(os.Stderr, "usage: e2eimages --bin DIR --debian TAR --kube-src DIR --out DIR")
		os.Exit(2)
	}
	if err := build(recipes(bin, kubeSrc), bin, debian, out); err != nil {
		fmt.Fprintln(os.Stderr, "e2eimages:", err)
		os.Exit(1)
	}
}

func build(list []recipe, bin, debian, out string) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "e2eimages-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	var specs []images.Spec
	for _, r := range list {
		rootfs := filepath.Join(work, r.name)
		if err := os.MkdirAll(rootfs, 0o755); err != nil {
			return err
		}
		spec := r.spec
		switch {
		case r.debian:
			spec.BaseLayers = []string{debian}
			spec.Env = append([]string{debianPath}, spec.Env...)
			if r.on != "" {
				spec.BaseLayers = append(spec.BaseLayers, filepath.Join(work, r.on+".layer"))
			}
		case r.busybox:
			busybox := filepath.Join(bin, "busybox")
			applets, err := busyboxApplets(busybox)
			if err != nil {
				return err
			}
			if err := images.BusyboxRootFS(busybox, rootfs, applets); err != nil {
				return err
			}
		}
		for _, f := range r.files {
			if err := place(rootfs, f); err != nil {
				return fmt.Errorf("%s: %w", r.name, err)
			}
		}
		// The top layer as a file of its own, the same bytes for every image
		// built on it.
		layer := filepath.Join(work, r.name+".layer")
		if err := images.WriteLayer(rootfs, layer); err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
		spec.BaseLayers = append(spec.BaseLayers, layer)
		specs = append(specs, spec)
		fmt.Printf("e2eimages: %s\n", strings.Join(append([]string{spec.Reference}, spec.Aliases...), ", "))
	}
	// One archive: the images share the Debian layer, which a node then
	// reads and unpacks once.
	path := filepath.Join(out, "conformance-images.tar")
	if err := images.WriteArchive(path, specs...); err != nil {
		return err
	}
	fmt.Printf("e2eimages: wrote %s\n", path)
	return nil
}

func place(rootfs string, f file) error {
	target := filepath.Join(rootfs, f.path)
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	if strings.HasSuffix(f.path, "/") {
		return os.MkdirAll(target, f.mode)
	}
	// A file replaces what the base laid out there (an applet symlink, say),
	// never writes through it.
	if err := os.Remove(target); err != nil && !os.IsNotExist(err) {
		return err
	}
	if f.link != "" {
		return os.Symlink(f.link, target)
	}
	data := []byte(f.content)
	if f.from != "" {
		var err error
		if data, err = os.ReadFile(f.from); err != nil {
			return err
		}
	}
	if err := os.WriteFile(target, data, f.mode.Perm()); err != nil {
		return err
	}
	// WriteFile leaves out the setuid bit; Chmod sets it.
	return os.Chmod(target, f.mode)
}

// busyboxApplets is every applet this busybox has, as the upstream image
// links them all.
func busyboxApplets(busybox string) ([]string, error) {
	out, err := exec.Command(busybox, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", busybox, err)
	}
	return strings.Fields(string(out)), nil
}
