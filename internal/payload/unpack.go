package payload

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// Unpack makes <root>/<first 16 hex of the digest> hold the payload and
// returns it; a complete one is reused. Several processes starting at once
// unpack it once (a lock file), and a crash halfway leaves only a temporary
// directory, removed by the next run. The payload is checked against its
// digest while it is unpacked.
func Unpack(root string, p Payload, progress io.Writer) (string, error) {
	dir := filepath.Join(root, p.Digest[:16])
	if complete(dir) {
		return dir, nil
	}
	// Closed to others: for root, root is <data-dir>/payload, and this
	// creates the data dir itself, which holds keys (the server only makes
	// it 0700 when it is missing).
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", root, err)
	}
	lock, err := os.OpenFile(filepath.Join(root, ".unpack.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	if complete(dir) { // another process finished it while we waited
		return dir, nil
	}
	began := time.Now()
	fmt.Fprintf(progress, "monokube: first run of this build: unpacking into %s\n", dir)
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return "", err
	}
	if err := extract(p, tmp); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("unpack into %s: %w", tmp, err)
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), nil, 0o644); err != nil {
		return "", err
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	fmt.Fprintf(progress, "monokube: unpacked in %s\n", time.Since(began).Round(10*time.Millisecond))
	removed, err := RemoveUnused(root, dir)
	for _, old := range removed {
		fmt.Fprintf(progress, "monokube: removed the unpack of an earlier build: %s\n", old)
	}
	if err != nil {
		fmt.Fprintf(progress, "monokube: %v\n", err)
	}
	return dir, nil
}

func complete(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, ".complete"))
	return err == nil
}

// extract decompresses the payload's tar into dir, hashing what it reads.
func extract(p Payload, dir string) error {
	hash := sha256.New()
	hashed := io.TeeReader(p.Section, hash)
	decoder, err := zstd.NewReader(hashed, zstd.WithDecoderMaxWindow(1<<30))
	if err != nil {
		return err
	}
	defer decoder.Close()
	archive := tar.NewReader(decoder)
	for {
		header, err := archive.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if !filepath.IsLocal(header.Name) {
			return fmt.Errorf("unexpected path %q", header.Name)
		}
		target := filepath.Join(dir, header.Name)
		switch header.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := writeFile(target, archive, os.FileMode(header.Mode).Perm()); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: unexpected entry type %c", header.Name, header.Typeflag)
		}
	}
	// The hash covers every byte: what the decoder has not read yet too.
	if _, err := io.Copy(io.Discard, decoder); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, hashed); err != nil {
		return err
	}
	if got := hex.EncodeToString(hash.Sum(nil)); got != p.Digest {
		return fmt.Errorf("payload damaged: SHA-256 %s, want %s (download monokube again)", got, p.Digest)
	}
	return nil
}

func writeFile(target string, content io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	file, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(file, content); err != nil {
		file.Close()
		return err
	}
	return file.Close()
}
