// Command pack zstd-compresses what the build made into the bundle
// directory, so the monokube binary carries it at about a third of its
// size: each executable of a directory as a file of its own, or a whole
// tree (the network tools with their libraries) as one tar.
//
//	go run ./hack/pack --from build/bin --to internal/bundle/assets/bin
//	go run ./hack/pack --tree build/nettools --to internal/bundle/assets/nettools.tar.zst
package main

import (
	"archive/tar"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"
)

func main() {
	from := flag.String("from", "", "directory of executables, one .zst each")
	tree := flag.String("tree", "", "directory to pack as one .tar.zst")
	to := flag.String("to", "", "directory for the .zst files, or the .tar.zst file with --tree")
	flag.Parse()
	var err error
	if *tree != "" {
		err = packTree(*tree, *to)
	} else {
		err = pack(*from, *to)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pack:", err)
		os.Exit(1)
	}
}

func pack(from, to string) error {
	entries, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(to, 0o755); err != nil {
		return err
	}
	for _, entry := range entries {
		err := compressed(filepath.Join(to, entry.Name()+".zst"), func(w io.Writer) error {
			in, err := os.Open(filepath.Join(from, entry.Name()))
			if err != nil {
				return err
			}
			defer in.Close()
			_, err = io.Copy(w, in)
			return err
		})
		if err != nil {
			return fmt.Errorf("%s: %w", entry.Name(), err)
		}
	}
	return nil
}

// packTree writes the regular files and directories below root, in name
// order and without times or owners, so equal trees give equal archives.
func packTree(root, to string) error {
	return compressed(to, func(w io.Writer) error {
		archive := tar.NewWriter(w)
		err := filepath.WalkDir(root, func(path string, entry fs.DirEntry, err error) error {
			if err != nil || path == root {
				return err
			}
			name, err := filepath.Rel(root, path)
			if err != nil {
				return err
			}
			info, err := entry.Info()
			if err != nil {
				return err
			}
			header := &tar.Header{Name: filepath.ToSlash(name), Mode: int64(info.Mode().Perm()), Typeflag: tar.TypeReg, Size: info.Size()}
			if entry.IsDir() {
				header.Name, header.Typeflag, header.Size = header.Name+"/", tar.TypeDir, 0
				return archive.WriteHeader(header)
			}
			if !info.Mode().IsRegular() {
				return fmt.Errorf("%s is neither a file nor a directory", path)
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
	})
}

// compressed writes what fill writes to dst, zstd-compressed.
func compressed(dst string, fill func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer out.Close()
	encoder, err := zstd.NewWriter(out, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	if err != nil {
		return err
	}
	if err := fill(encoder); err != nil {
		return err
	}
	if err := encoder.Close(); err != nil {
		return err
	}
	return out.Close()
}
