// Command nettools assembles the network tools monokube carries (package
// internal/nettools) from Debian's binary packages: the executables, every
// library they and iptables' extensions link, found by reading their ELF
// dependencies, and the dynamic loader. It fails, naming the library, when
// a package is missing from the list the Makefile downloads.
//
//	go run ./hack/nettools --debs DIR --arch amd64 --out build/nettools
package main

import (
	"debug/elf"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/monokube/monokube/internal/bundle"
)

// executables are the programs kube-proxy, the CNI plugins, flannel and the
// NetworkPolicy controller run (internal/nettools maps names onto them).
var executables = []string{"xtables-legacy-multi", "xtables-nft-multi", "nft", "ipset", "conntrack"}

// triplets are Debian's library directory names (multiarch) per architecture.
var triplets = map[string]string{"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}

func main() {
	debs := flag.String("debs", "", "directory of the .deb files")
	arch := flag.String("arch", "amd64", "the packages' architecture (amd64, arm64)")
	out := flag.String("out", "", "directory to fill with lib/, sbin/ and xtables/")
	flag.Parse()
	triplet, ok := triplets[*arch]
	if !ok {
		fmt.Fprintf(os.Stderr, "nettools: --arch %q: want amd64 or arm64\n", *arch)
		os.Exit(2)
	}
	if err := assemble(*debs, triplet, *out); err != nil {
		fmt.Fprintln(os.Stderr, "nettools:", err)
		os.Exit(1)
	}
}

func assemble(debs, triplet, out string) error {
	root, err := os.MkdirTemp("", "nettools-root")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	packages, err := filepath.Glob(filepath.Join(debs, "*.deb"))
	if err != nil || len(packages) == 0 {
		return fmt.Errorf("no .deb files in %q", debs)
	}
	for _, deb := range packages {
		if output, err := exec.Command("dpkg-deb", "-x", deb, root).CombinedOutput(); err != nil {
			return fmt.Errorf("unpack %s: %v: %s", deb, err, output)
		}
	}
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	for _, dir := range []string{"lib", "sbin", "xtables"} {
		if err := os.MkdirAll(filepath.Join(out, dir), 0o755); err != nil {
			return err
		}
	}
	var pending []string // files whose libraries are still to be found
	for _, name := range executables {
		source, err := find(root, name, "usr/sbin", "sbin")
		if err != nil {
			return err
		}
		target := filepath.Join(out, "sbin", name)
		if err := bundle.CopyFile(source, target); err != nil {
			return err
		}
		pending = append(pending, target)
	}
	extensions, _ := filepath.Glob(filepath.Join(root, "usr/lib/*/xtables/*.so"))
	if len(extensions) == 0 {
		return fmt.Errorf("no iptables extensions (usr/lib/*/xtables) in the packages: is iptables among them?")
	}
	for _, extension := range extensions {
		target := filepath.Join(out, "xtables", filepath.Base(extension))
		if err := bundle.CopyFile(extension, target); err != nil {
			return err
		}
		pending = append(pending, target)
	}
	return copyLibraries(root, triplet, out, pending)
}

// copyLibraries copies into out/lib every shared library the pending files
// need, transitively, and the loader their interpreter names.
func copyLibraries(root, triplet, out string, pending []string) error {
	copied := map[string]bool{}
	for len(pending) > 0 {
		file := pending[0]
		pending = pending[1:]
		needed, interpreter, err := dependencies(file)
		if err != nil {
			return err
		}
		if interpreter != "" {
			needed = append(needed, filepath.Base(interpreter))
		}
		for _, soname := range needed {
			if copied[soname] {
				continue
			}
			source, err := find(root, soname, "lib/"+triplet, "usr/lib/"+triplet, "lib64", "usr/lib64", "lib")
			if err != nil {
				return fmt.Errorf("%s needs %s: add its package to NETTOOLS_PACKAGES: %w", filepath.Base(file), soname, err)
			}
			target := filepath.Join(out, "lib", soname)
			if err := bundle.CopyFile(source, target); err != nil {
				return err
			}
			copied[soname] = true
			pending = append(pending, target)
		}
	}
	names := slices.Sorted(maps.Keys(copied))
	fmt.Printf("nettools: %d executables, %d libraries: %s\n", len(executables), len(names), strings.Join(names, " "))
	return nil
}

func dependencies(path string) (needed []string, interpreter string, err error) {
	file, err := elf.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("read %s: %w", path, err)
	}
	defer file.Close()
	needed, err = file.ImportedLibraries()
	if err != nil {
		return nil, "", fmt.Errorf("libraries of %s: %w", path, err)
	}
	for _, program := range file.Progs {
		if program.Type != elf.PT_INTERP {
			continue
		}
		raw, err := io.ReadAll(program.Open())
		if err != nil {
			return nil, "", fmt.Errorf("interpreter of %s: %w", path, err)
		}
		interpreter = strings.TrimRight(string(raw), "\x00")
	}
	return needed, interpreter, nil
}

// find returns the first of root/dir/name that exists, symbolic links
// resolved inside root (Debian's links are relative or root-absolute).
func find(root, name string, dirs ...string) (string, error) {
	for _, dir := range dirs {
		path := filepath.Join(root, dir, name)
		for range 8 {
			info, err := os.Lstat(path)
			if err != nil {
				break
			}
			if info.Mode()&os.ModeSymlink == 0 {
				return path, nil
			}
			link, err := os.Readlink(path)
			if err != nil {
				return "", err
			}
			if filepath.IsAbs(link) {
				path = filepath.Join(root, link)
			} else {
				path = filepath.Join(filepath.Dir(path), link)
			}
		}
	}
	return "", fmt.Errorf("%s not found in %s", name, strings.Join(dirs, ", "))
}
