// Package release checks the downloads `make build GOARCH=...` and `make
// release` produce, as files: what they carry is built for the architecture
// they are named for.
package release

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/monokube/monokube/internal/payload"
)

var machines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// MONOKUBE_CROSS_PROGRAM names a program built for MONOKUBE_CROSS_ARCH
// (make cross): the launcher, every executable and library of its payload,
// and every image's config and executables are for that architecture.
func TestProgramIsForItsArchitecture(t *testing.T) {
	program, arch := os.Getenv("MONOKUBE_CROSS_PROGRAM"), os.Getenv("MONOKUBE_CROSS_ARCH")
	if program == "" || arch == "" {
		t.Skip("MONOKUBE_CROSS_PROGRAM and MONOKUBE_CROSS_ARCH name the program to check (make cross)")
	}
	want, ok := machines[arch]
	if !ok {
		t.Fatalf("MONOKUBE_CROSS_ARCH=%s: want amd64 or arm64", arch)
	}
	checkELF(t, program, want)
	file, err := os.Open(program)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	found, err := payload.Find(file)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := payload.Unpack(t.TempDir(), found, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	executables, images := 0, 0
	err = filepath.WalkDir(dir, func(path string, entry fs.DirEntry, err error) error {
		if err != nil || !entry.Type().IsRegular() {
			return err
		}
		switch {
		case strings.HasSuffix(path, ".tar"):
			images++
			checkImage(t, path, arch, want)
		case isELF(path):
			executables++
			checkELF(t, path, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The program, runc, the shim, crictl, CNI plugins, the network tools
	// and their libraries; pause, CoreDNS, the volume helper, metrics-server
	// and Traefik.
	if executables < 20 || images < 5 {
		t.Fatalf("the payload has %d ELF files and %d images; want at least 20 and 5", executables, images)
	}
	t.Logf("%s: launcher, %d ELF files and %d images, all %s", program, executables, images, arch)
}

func isELF(path string) bool {
	file, err := os.Open(path)
	if err != nil {
		return false
	}
	defer file.Close()
	head := make([]byte, 4)
	_, err = io.ReadFull(file, head)
	return err == nil && string(head) == elf.ELFMAG
}

func checkELF(t *testing.T, path string, want elf.Machine) {
	t.Helper()
	file, err := elf.Open(path)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	defer file.Close()
	if file.Machine != want {
		t.Errorf("%s is for %s, want %s", path, file.Machine, want)
	}
}

// checkImage reads a docker-archive: its config's platform, and the ELF
// headers of every executable in its layers.
func checkImage(t *testing.T, path, arch string, want elf.Machine) {
	t.Helper()
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	var manifest []struct{ Config string }
	configs := map[string][]byte{}
	elves := 0
	archive := tar.NewReader(file)
	for {
		header, err := archive.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		data, err := io.ReadAll(archive)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		switch {
		case header.Name == "manifest.json":
			if err := json.Unmarshal(data, &manifest); err != nil {
				t.Fatalf("%s: manifest.json: %v", path, err)
			}
		case header.Size < 1<<16:
			configs[header.Name] = data
		default:
			elves += checkLayer(t, path+":"+header.Name, data, want)
		}
	}
	if len(manifest) == 0 {
		t.Fatalf("%s has no manifest.json", path)
	}
	var config struct{ OS, Architecture string }
	if err := json.Unmarshal(configs[manifest[0].Config], &config); err != nil {
		t.Fatalf("%s: config: %v", path, err)
	}
	if config.OS != "linux" || config.Architecture != arch {
		t.Errorf("%s is for %s/%s, want linux/%s", path, config.OS, config.Architecture, arch)
	}
	if elves == 0 {
		t.Errorf("%s has no executable in its layers", path)
	}
}

func checkLayer(t *testing.T, name string, data []byte, want elf.Machine) int {
	t.Helper()
	elves := 0
	var stream io.Reader = bytes.NewReader(data)
	// Layers are stored in gzip framing without compression (package images).
	if bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
		unzipped, err := gzip.NewReader(stream)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			return 0
		}
		stream = unzipped
	}
	layer := tar.NewReader(stream)
	for {
		header, err := layer.Next()
		if err != nil {
			return elves
		}
		if header.Typeflag != tar.TypeReg {
			continue
		}
		content, err := io.ReadAll(layer)
		if err != nil || len(content) < 4 || string(content[:4]) != elf.ELFMAG {
			continue
		}
		file, err := elf.NewFile(bytes.NewReader(content))
		if err != nil {
			t.Errorf("%s/%s: %v", name, header.Name, err)
			continue
		}
		if file.Machine != want {
			t.Errorf("%s/%s is for %s, want %s", name, header.Name, file.Machine, want)
		}
		elves++
	}
}
