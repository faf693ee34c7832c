package vm

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// An initramfs is the whole guest for an architecture we have no Debian
// image for (arm64: mmdebstrap would need qemu-user and binfmt_misc on this
// machine to run the packages' scripts): the kernel unpacks this cpio
// archive into memory and runs its /init.
type initramfs struct {
	entries map[string]cpioEntry // by path inside the archive, no leading /
}

type cpioEntry struct {
	mode   uint32 // type and permission bits, as in stat(2)
	source string // a host file to copy; empty for a directory or link
	data   string // the content of a small file, or a link's target
}

const (
	cpioDir     = 0o040000
	cpioRegular = 0o100000
	cpioSymlink = 0o120000
)

func newInitramfs() *initramfs { return &initramfs{entries: map[string]cpioEntry{}} }

func (r *initramfs) dir(name string) {
	name = strings.Trim(name, "/")
	for parent := filepath.Dir(name); parent != "." && parent != "/"; parent = filepath.Dir(parent) {
		if _, ok := r.entries[parent]; !ok {
			r.entries[parent] = cpioEntry{mode: cpioDir | 0o755}
		}
	}
	if name != "" {
		r.entries[name] = cpioEntry{mode: cpioDir | 0o755}
	}
}

// file adds a copy of a host file.
func (r *initramfs) file(name, source string, perm uint32) {
	name = strings.Trim(name, "/")
	r.dir(filepath.Dir(name))
	r.entries[name] = cpioEntry{mode: cpioRegular | perm, source: source}
}

// text adds a file with the given content.
func (r *initramfs) text(name, content string, perm uint32) {
	name = strings.Trim(name, "/")
	r.dir(filepath.Dir(name))
	r.entries[name] = cpioEntry{mode: cpioRegular | perm, data: content}
}

func (r *initramfs) symlink(name, target string) {
	name = strings.Trim(name, "/")
	r.dir(filepath.Dir(name))
	r.entries[name] = cpioEntry{mode: cpioSymlink | 0o777, data: target}
}

// tree adds every regular file below the host directory source at name.
func (r *initramfs) tree(name, source string, keep func(rel string) bool) error {
	return filepath.WalkDir(source, func(path string, entry fs.DirEntry, err error) error {
		if err != nil || !entry.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(source, path)
		if err != nil || !keep(rel) {
			return err
		}
		r.file(filepath.Join(name, rel), path, 0o644)
		return nil
	})
}

// write writes the archive in the kernel's "newc" cpio format, entries in
// name order (parents first), uncompressed: the program in it is already.
func (r *initramfs) write(out string) error {
	file, err := os.Create(out)
	if err != nil {
		return err
	}
	defer file.Close()
	inode := uint32(1)
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for name := range r.entries {
			if !yield(name) {
				return
			}
		}
	}) {
		entry := r.entries[name]
		size := int64(len(entry.data))
		if entry.source != "" {
			info, err := os.Stat(entry.source)
			if err != nil {
				return err
			}
			size = info.Size()
		}
		if err := writeCPIOHeader(file, name, inode, entry.mode, size); err != nil {
			return err
		}
		inode++
		if entry.source != "" {
			source, err := os.Open(entry.source)
			if err != nil {
				return err
			}
			_, err = io.Copy(file, source)
			source.Close()
			if err != nil {
				return fmt.Errorf("copy %s: %w", entry.source, err)
			}
		} else if _, err := io.WriteString(file, entry.data); err != nil {
			return err
		}
		if err := pad(file, size); err != nil {
			return err
		}
	}
	if err := writeCPIOHeader(file, "TRAILER!!!", 0, 0, 0); err != nil {
		return err
	}
	return file.Close()
}

func writeCPIOHeader(w io.Writer, name string, inode, mode uint32, size int64) error {
	nlink := 1
	if mode&cpioDir == cpioDir {
		nlink = 2
	}
	// magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
	// devminor, rdevmajor, rdevminor, namesize, check
	header := fmt.Sprintf("070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
		inode, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(name)+1, 0)
	if _, err := io.WriteString(w, header+name+"\x00"); err != nil {
		return err
	}
	return pad(w, int64(len(header)+len(name)+1))
}

// pad writes zeros up to the next multiple of four bytes.
func pad(w io.Writer, n int64) error {
	_, err := w.Write(make([]byte, (4-n%4)%4))
	return err
}
