package node

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	containerd "github.com/containerd/containerd/v2/client"
	"k8s.io/klog/v2"
)

// importRecord remembers which image archives are already in containerd,
// so that a restart imports only what is new or changed. (k3s re-imports
// every archive at each start unless a cache file is opted in; its users
// report starts that take minutes.)
type importRecord struct {
	path string

	mu       sync.Mutex
	Archives map[string]importedArchive `json:"archives"` // by source
}

// importedArchive is one archive's import: Key names its content without
// reading it again (the build's SHA-256 of a bundled archive; a file's
// size, modification time and inode), and Images the images it gave, whose
// digests are the content containerd holds.
type importedArchive struct {
	Key    string          `json:"key"`
	Images []importedImage `json:"images"`
}

type importedImage struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
}

// loadImportRecord reads the record at path; a missing or unreadable one
// is empty, which only means every archive is imported once more.
func loadImportRecord(path string) *importRecord {
	record := &importRecord{path: path}
	if raw, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(raw, record)
	}
	if record.Archives == nil {
		record.Archives = map[string]importedArchive{}
	}
	return record
}

// current reports whether source was imported with this key and containerd
// still has each of its images at the recorded digest (an image removed
// with crictl rmi is imported again).
func (r *importRecord) current(ctx context.Context, client *containerd.Client, source, key string) bool {
	r.mu.Lock()
	archive, ok := r.Archives[source]
	r.mu.Unlock()
	if !ok || archive.Key != key || len(archive.Images) == 0 {
		return false
	}
	for _, image := range archive.Images {
		stored, err := client.ImageService().Get(ctx, image.Name)
		if err != nil || stored.Target.Digest.String() != image.Digest {
			return false
		}
	}
	return true
}

// pin labels the images an archive gave as pinned where they are not.
func (r *importRecord) pin(ctx context.Context, client *containerd.Client, source string) error {
	r.mu.Lock()
	archive := r.Archives[source]
	r.mu.Unlock()
	for _, image := range archive.Images {
		stored, err := client.ImageService().Get(ctx, image.Name)
		if err != nil {
			return fmt.Errorf("image %s: %w", image.Name, err)
		}
		if stored.Labels[pinnedLabel] == pinnedValue {
			continue
		}
		if stored.Labels == nil {
			stored.Labels = map[string]string{}
		}
		stored.Labels[pinnedLabel] = pinnedValue
		if _, err := client.ImageService().Update(ctx, stored, "labels."+pinnedLabel); err != nil {
			return fmt.Errorf("pin image %s: %w", image.Name, err)
		}
		klog.InfoS("Pinned image", "image", image.Name, "from", source)
	}
	return nil
}

func (r *importRecord) set(source, key string, images []importedImage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Archives[source] = importedArchive{Key: key, Images: images}
}

// save replaces the record whole, so a crash leaves the old or the new one.
func (r *importRecord) save() error {
	r.mu.Lock()
	raw, err := json.Marshal(r)
	r.mu.Unlock()
	if err != nil {
		return err
	}
	// A temporary file of its own: `images import` may save at the same time.
	tmp, err := os.CreateTemp(filepath.Dir(r.path), filepath.Base(r.path)+".*")
	if err != nil {
		return fmt.Errorf("record imported images: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(raw); err != nil {
		tmp.Close()
		return fmt.Errorf("record imported images: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("record imported images: %w", err)
	}
	return os.Rename(tmp.Name(), r.path)
}

// fileKey names a file's content by what a change to it changes.
func fileKey(info os.FileInfo) string {
	var inode uint64
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		inode = st.Ino
	}
	return fmt.Sprintf("size=%d mtime=%d inode=%d", info.Size(), info.ModTime().UnixNano(), inode)
}
