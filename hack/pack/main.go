// Command pack writes the monokube program users download: the launcher
// (cmd/monokube-launcher) followed by the payload directory (the real
// program and its bundle) as one tar compressed by zstd with a long window,
// and the footer that names the payload's length and SHA-256 (package
// payload). zstd is Debian's zstd command: at level 19 with --long it does
// markedly better than the Go encoders on these executables.
//
//	go run ./hack/pack --launcher build/launcher --payload build/payload --level 19 --to bin/monokube
package main

import (
	"archive/tar"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"github.com/monokube/monokube/internal/payload"
)

func main() {
	launcher := flag.String("launcher", "", "the launcher executable")
	dir := flag.String("payload", "", "directory to pack as the payload")
	level := flag.Int("level", 19, "zstd compression level (1-19; lower builds faster, downloads bigger)")
	to := flag.String("to", "", "the program to write")
	flag.Parse()
	if err := pack(*launcher, *dir, *level, *to); err != nil {
		fmt.Fprintln(os.Stderr, "pack:", err)
		os.Exit(1)
	}
}

func pack(launcher, dir string, level int, to string) error {
	if level < 1 || level > 19 {
		return fmt.Errorf("--level %d: want 1 to 19", level)
	}
	out, err := os.CreateTemp(filepath.Dir(to), filepath.Base(to)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	head, err := os.Open(launcher)
	if err != nil {
		return err
	}
	defer head.Close()
	if _, err := io.Copy(out, head); err != nil {
		return err
	}
	// zstd's window must not exceed what the launcher's decoder allows
	// (payload.Unpack: 1 GiB); 2^27 covers one executable and its neighbours.
	zstd := exec.Command("zstd", "-q", "-c", "-T0", "--long=27", "-"+strconv.Itoa(level))
	sum := sha256.New()
	counted := &counter{}
	zstd.Stdout = io.MultiWriter(out, sum, counted)
	zstd.Stderr = os.Stderr
	stdin, err := zstd.StdinPipe()
	if err != nil {
		return err
	}
	if err := zstd.Start(); err != nil {
		return fmt.Errorf("run zstd (Debian: apt-get install zstd): %w", err)
	}
	writeErr := writeTar(dir, stdin)
	stdin.Close()
	if err := zstd.Wait(); err != nil {
		return fmt.Errorf("zstd: %w", err)
	}
	if writeErr != nil {
		return writeErr
	}
	if _, err := out.Write(payload.Footer(counted.n, [sha256.Size]byte(sum.Sum(nil)))); err != nil {
		return err
	}
	if err := out.Chmod(0o755); err != nil {
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(out.Name(), to)
}

type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// writeTar writes the regular files and directories below root, in name
// order and without times or owners, so equal trees give equal payloads.
func writeTar(root string, w io.Writer) error {
	archive := tar.NewWriter(w)
	err := filepath.WalkDir(root, func(path string, entry fs.DirEntry, err error) error {
		if err != nil || path == root {
			return err
		}
		name, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		info, err := os.Stat(path) // the build's links count as their files
		if err != nil {
			return err
		}
		header := &tar.Header{Name: filepath.ToSlash(name), Mode: int64(info.Mode().Perm()), Typeflag: tar.TypeReg, Size: info.Size()}
		if info.IsDir() {
			header.Name, header.Typeflag, header.Size = header.Name+"/", tar.TypeDir, 0
			return archive.WriteHeader(header)
		}
		if err := archive.WriteHeader(header); err != nil {
			return err
		}
		file, err := os.Open(path)
		if err != nil {
			return err
		}
		defer file.Close()
		_, err = io.Copy(archive, file)
		return err
	})
	if err != nil {
		return err
	}
	return archive.Close()
}
