// Command pack zstd-compresses the executables the build made into the
// bundle directory, so the monokube binary carries them at about a third of
// their size.
//
//	go run ./hack/pack --from build/bin --to internal/bundle/assets/bin
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"
)

func main() {
	from := flag.String("from", "", "directory of executables")
	to := flag.String("to", "", "directory for the .zst files")
	flag.Parse()
	if err := pack(*from, *to); err != nil {
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
		if err := compress(filepath.Join(from, entry.Name()), filepath.Join(to, entry.Name()+".zst")); err != nil {
			return fmt.Errorf("%s: %w", entry.Name(), err)
		}
	}
	return nil
}

func compress(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer out.Close()
	encoder, err := zstd.NewWriter(out, zstd.WithEncoderLevel(zstd.SpeedBestCompression))
	if err != nil {
		return err
	}
	if _, err := io.Copy(encoder, in); err != nil {
		return err
	}
	return encoder.Close()
}
