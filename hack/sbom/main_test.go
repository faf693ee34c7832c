package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The SBOM of a payload holding a Go program (this test's own executable)
// and a Debian package names the program, the Go modules it was built from
// and the package with its version; written twice, it is the same bytes.
func TestSBOMListsModulesAndPackagesReproducibly(t *testing.T) {
	dir := t.TempDir()
	payload := filepath.Join(dir, "payload")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	program, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(payload, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(payload, "bin", "program"), program, 0o755); err != nil {
		t.Fatal(err)
	}
	debs := filepath.Join(dir, "debs")
	control := filepath.Join(dir, "pkg", "DEBIAN", "control")
	if err := os.MkdirAll(filepath.Dir(control), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(control, []byte("Package: libexample1\nVersion: 1:2.3-4+deb12u1\nArchitecture: arm64\n"+
		"Maintainer: nobody <nobody@example.com>\nDescription: an example\nSource: example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(debs, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("dpkg-deb", "--build", filepath.Join(dir, "pkg"), filepath.Join(debs, "libexample1.deb")).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --build: %v: %s", err, out)
	}
	artifact := filepath.Join(dir, "monokube")
	if err := os.WriteFile(artifact, []byte("the download"), 0o755); err != nil {
		t.Fatal(err)
	}
	write1, write2 := filepath.Join(dir, "1.json"), filepath.Join(dir, "2.json")
	for _, out := range []string{write1, write2} {
		if err := write(options{artifact: artifact, payload: payload, debs: debs, version: "v1.2.3", epoch: 1700000000, out: out}); err != nil {
			t.Fatal(err)
		}
	}
	first, _ := os.ReadFile(write1)
	second, _ := os.ReadFile(write2)
	if !bytes.Equal(first, second) {
		t.Error("two SBOMs of the same build differ")
	}
	var bom struct {
		SpecVersion  string
		SerialNumber string
		Metadata     struct{ Timestamp string }
		Components   []struct{ Name, Version, Purl string }
	}
	if err := json.Unmarshal(first, &bom); err != nil {
		t.Fatal(err)
	}
	found := map[string]string{}
	for _, component := range bom.Components {
		found[component.Name] = component.Purl
	}
	for name, purl := range map[string]string{
		"payload/bin/program":               "",
		"github.com/CycloneDX/cyclonedx-go": "pkg:golang/github.com/CycloneDX/cyclonedx-go@v0.12.0",
		"libexample1":                       "pkg:deb/debian/libexample1@1%3A2.3-4%2Bdeb12u1?arch=arm64&distro=debian-12",
	} {
		got, ok := found[name]
		if !ok {
			t.Errorf("the SBOM lacks %s", name)
		} else if got != purl {
			t.Errorf("%s: purl %q, want %q", name, got, purl)
		}
	}
	if bom.Metadata.Timestamp != "2023-11-14T22:13:20Z" || !strings.HasPrefix(bom.SerialNumber, "urn:uuid:") {
		t.Errorf("timestamp %q and serial %q: want the build's time and a UUID URN", bom.Metadata.Timestamp, bom.SerialNumber)
	}
}
