// Command sbom writes the CycloneDX software bill of materials of one
// monokube download: every Go program it carries (the program, the
// executables of its payload, the programs inside its system images) with
// the Go modules each was built from, read from the build information Go
// embeds in every executable, and every Debian package the build took
// (the network tools, and what runc links statically). Nothing in it is
// typed by hand, and two runs on the same build give the same bytes.
//
//	go run ./hack/sbom --artifact bin/monokube --payload build/payload --rootfs build/rootfs \
//		--debs ~/.cache/monokube/debs/amd64-... --version v1.2.3 --epoch 1700000000 --out monokube.cdx.json
package main

import (
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/uuid"
)

type options struct {
	artifact, payload, rootfs, debs, version, out string
	epoch                                         int64
}

func main() {
	var o options
	flag.StringVar(&o.artifact, "artifact", "", "the download (bin/monokube)")
	flag.StringVar(&o.payload, "payload", "", "the payload directory it was packed from")
	flag.StringVar(&o.rootfs, "rootfs", "", "the system images' root directories")
	flag.StringVar(&o.debs, "debs", "", "directory of the Debian packages the build took")
	flag.StringVar(&o.version, "version", "", "monokube's version")
	flag.Int64Var(&o.epoch, "epoch", 0, "the build's time (SOURCE_DATE_EPOCH)")
	flag.StringVar(&o.out, "out", "", "the CycloneDX JSON file to write")
	flag.Parse()
	if o.artifact == "" || o.payload == "" || o.out == "" {
		fmt.Fprintln(os.Stderr, "usage: sbom --artifact FILE --payload DIR [--rootfs DIR] [--debs DIR] --version V --epoch N --out FILE")
		os.Exit(2)
	}
	if err := write(o); err != nil {
		fmt.Fprintln(os.Stderr, "sbom:", err)
		os.Exit(1)
	}
}

func write(o options) error {
	artifactSum, err := fileSHA256(o.artifact)
	if err != nil {
		return err
	}
	root := &cdx.Component{
		BOMRef: "monokube", Type: cdx.ComponentTypeApplication, Name: "monokube", Version: o.version,
		Hashes: &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: artifactSum}},
	}
	inventory := newInventory()
	for _, dir := range []string{o.payload, o.rootfs} {
		if dir == "" {
			continue
		}
		if err := inventory.addExecutables(dir); err != nil {
			return err
		}
	}
	if o.debs != "" {
		if err := inventory.addDebianPackages(o.debs); err != nil {
			return err
		}
	}
	bom := cdx.NewBOM()
	// The serial number names this download: the same bytes, the same BOM.
	bom.SerialNumber = uuid.NewSHA1(uuid.NameSpaceURL, []byte("monokube-sbom:"+artifactSum)).URN()
	bom.Metadata = &cdx.Metadata{
		Timestamp: time.Unix(o.epoch, 0).UTC().Format(time.RFC3339),
		Component: root,
	}
	components, dependencies := inventory.result()
	dependencies = append([]cdx.Dependency{{Ref: root.BOMRef, Dependencies: &inventory.top}}, dependencies...)
	bom.Components, bom.Dependencies = &components, &dependencies
	out, err := os.Create(o.out)
	if err != nil {
		return err
	}
	defer out.Close()
	if err := cdx.NewBOMEncoder(out, cdx.BOMFileFormatJSON).SetPretty(true).Encode(bom); err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	fmt.Printf("sbom: %s: %d executables, %d Go modules, %d Debian packages\n",
		o.out, inventory.executables, inventory.modules, inventory.packages)
	return out.Close()
}

// inventory collects components by reference; a module several programs
// use is one component that each program's dependency entry names.
type inventory struct {
	components map[string]cdx.Component
	uses       map[string][]string // reference -> references it depends on
	top        []string            // what the download itself contains

	executables, modules, packages int
}

func newInventory() *inventory {
	return &inventory{components: map[string]cdx.Component{}, uses: map[string][]string{}}
}

// addExecutables adds every Go executable below dir (files Go's build
// information cannot be read from, such as the network tools, are skipped:
// their Debian packages are listed instead).
func (v *inventory) addExecutables(dir string) error {
	return filepath.WalkDir(dir, func(path string, entry fs.DirEntry, err error) error {
		if err != nil || !entry.Type().IsRegular() {
			return err
		}
		info, err := buildinfo.ReadFile(path)
		if err != nil {
			return nil
		}
		rel, err := filepath.Rel(filepath.Dir(dir), path)
		if err != nil {
			return err
		}
		sum, err := fileSHA256(path)
		if err != nil {
			return err
		}
		ref := "file:" + filepath.ToSlash(rel)
		v.components[ref] = cdx.Component{
			BOMRef: ref, Type: cdx.ComponentTypeApplication, Name: filepath.ToSlash(rel),
			Hashes:     &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: sum}},
			Properties: &[]cdx.Property{{Name: "go:toolchain", Value: info.GoVersion}, {Name: "go:main", Value: info.Path}},
		}
		v.top = append(v.top, ref)
		v.executables++
		stdlib := v.module("stdlib", strings.TrimPrefix(info.GoVersion, "go"), "")
		uses := []string{stdlib}
		if info.Main.Path != "" {
			uses = append(uses, v.module(info.Main.Path, info.Main.Version, info.Main.Sum))
		}
		for _, dep := range info.Deps {
			if dep.Replace != nil {
				dep = dep.Replace
			}
			uses = append(uses, v.module(dep.Path, dep.Version, dep.Sum))
		}
		v.uses[ref] = uses
		return nil
	})
}

func (v *inventory) module(path, version, sum string) string {
	purl := "pkg:golang/" + path
	if version != "" && version != "(devel)" {
		purl += "@" + escape(version)
	}
	if _, ok := v.components[purl]; !ok {
		component := cdx.Component{BOMRef: purl, Type: cdx.ComponentTypeLibrary, Name: path, Version: version, PackageURL: purl}
		if sum != "" {
			component.Properties = &[]cdx.Property{{Name: "go:sum", Value: sum}}
		}
		v.components[purl] = component
		v.modules++
	}
	return purl
}

// addDebianPackages adds each .deb in dir by the fields of its control file.
func (v *inventory) addDebianPackages(dir string) error {
	debs, err := filepath.Glob(filepath.Join(dir, "*.deb"))
	if err != nil {
		return err
	}
	for _, deb := range debs {
		output, err := exec.Command("dpkg-deb", "--show", "--showformat=${Package}\t${Version}\t${Architecture}\t${source:Package}", deb).Output()
		if err != nil {
			return fmt.Errorf("read %s: %w", deb, err)
		}
		fields := strings.Split(strings.TrimSpace(string(output)), "\t")
		if len(fields) != 4 {
			return fmt.Errorf("read %s: unexpected fields %q", deb, output)
		}
		name, version, arch, source := fields[0], fields[1], fields[2], fields[3]
		purl := fmt.Sprintf("pkg:deb/debian/%s@%s?arch=%s&distro=debian-12", name, escape(version), arch)
		v.components[purl] = cdx.Component{
			BOMRef: purl, Type: cdx.ComponentTypeLibrary, Name: name, Version: version, PackageURL: purl,
			Properties: &[]cdx.Property{{Name: "debian:source", Value: source}},
		}
		v.top = append(v.top, purl)
		v.packages++
	}
	return nil
}

// result lists the components and dependencies in reference order.
func (v *inventory) result() ([]cdx.Component, []cdx.Dependency) {
	var components []cdx.Component
	var dependencies []cdx.Dependency
	for _, ref := range slices.Sorted(maps.Keys(v.components)) {
		components = append(components, v.components[ref])
		if uses, ok := v.uses[ref]; ok {
			slices.Sort(uses)
			uses = slices.Compact(uses)
			dependencies = append(dependencies, cdx.Dependency{Ref: ref, Dependencies: &uses})
		}
	}
	slices.Sort(v.top)
	return components, dependencies
}

// escape percent-encodes what a package URL's version may not hold as is
// (Debian epochs and "+").
func escape(version string) string {
	return strings.NewReplacer(":", "%3A", "+", "%2B").Replace(version)
}

func fileSHA256(path string) (string, error) {
	file, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer file.Close()
	hash := sha256.New()
	if _, err := io.Copy(hash, file); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(hash.Sum(nil)), nil
}
