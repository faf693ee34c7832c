// Package payload is the launcher's side of the monokube program users
// download. That file is a small launcher (cmd/monokube-launcher) with the
// real program and everything it carries (package bundle) appended as one
// zstd-compressed tar: compressed together, with a long window, the
// executables share their Go runtime and libraries, which is what brings
// the download under 90 MB. The first run of a build unpacks it once,
// content-addressed, and every run then execs the real program, as k3s
// does with its data dir.
package payload

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
)

// The footer ends the launcher file: magic, the payload's length, its SHA-256.
const (
	magic      = "MKPAYLD1"
	footerSize = len(magic) + 8 + sha256.Size
)

// Footer is what the build appends after the compressed payload.
func Footer(length int64, sum [sha256.Size]byte) []byte {
	footer := make([]byte, 0, footerSize)
	footer = append(footer, magic...)
	footer = binary.BigEndian.AppendUint64(footer, uint64(length))
	return append(footer, sum[:]...)
}

// Payload is the compressed tar inside a launcher file.
type Payload struct {
	// Digest is the payload's SHA-256 (hex), which names its unpack dir.
	Digest string
	// Section reads the compressed tar.
	Section *io.SectionReader
}

// Find reads the footer of the launcher file at path.
func Find(file *os.File) (Payload, error) {
	info, err := file.Stat()
	if err != nil {
		return Payload{}, err
	}
	if info.Size() < int64(footerSize) {
		return Payload{}, errors.New("no payload appended (build with `make build`)")
	}
	footer := make([]byte, footerSize)
	if _, err := file.ReadAt(footer, info.Size()-int64(footerSize)); err != nil {
		return Payload{}, fmt.Errorf("read payload footer: %w", err)
	}
	if !bytes.HasPrefix(footer, []byte(magic)) {
		return Payload{}, errors.New("no payload appended (build with `make build`)")
	}
	length := int64(binary.BigEndian.Uint64(footer[len(magic):]))
	start := info.Size() - int64(footerSize) - length
	if length <= 0 || start < 0 {
		return Payload{}, fmt.Errorf("payload footer names %d bytes in a file of %d", length, info.Size())
	}
	return Payload{
		Digest:  hex.EncodeToString(footer[len(magic)+8:]),
		Section: io.NewSectionReader(file, start, length),
	}, nil
}
