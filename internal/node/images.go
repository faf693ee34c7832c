package node

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/platforms"
	"golang.org/x/sync/errgroup"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/bundle"
	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/datadir"
)

// criNamespace is the containerd namespace the CRI plugin (and so the
// kubelet) sees images in.
const criNamespace = "k8s.io"

// Images imports the bundled system images and every archive in
// <data-dir>/images/ into containerd, so pods start without any registry.
// The import runs in the background from Start on (a server overlaps it
// with its control plane's start). The kubelet waits for Imported, which
// covers the pause image only: the user's archives (which may be
// gigabytes) import while the kubelet starts, the other bundled images at
// their first pull, and a pull that one of them may answer waits for it
// (imageGate, served from Start on). Archives imported by an earlier start
// are skipped (importRecord).
type Images struct {
	Layout datadir.Layout

	component.Task
	imported chan struct{}
	err      error
	imports  *startImports
	stopGate func()
}

var _ component.Component = (*Images)(nil)

func (i *Images) Name() string { return "images" }

func (i *Images) Init(context.Context) error { return os.MkdirAll(i.Layout.ImagesDir(), 0o755) }

func (i *Images) Start(ctx context.Context) error {
	first, rest, err := i.listBundled()
	if err != nil {
		return err
	}
	i.stopGate, err = serveImageGate(i.Layout.ImageGateSocket(), i.Layout.ContainerdSocket(), i.imports)
	if err != nil {
		return err
	}
	client, err := containerd.New(i.Layout.ContainerdSocket(), containerd.WithDefaultNamespace(criNamespace))
	if err != nil {
		return fmt.Errorf("connect to containerd: %w", err)
	}
	record := loadImportRecord(i.Layout.ImportRecordFile())
	i.imported = make(chan struct{})
	i.Go(ctx, func(ctx context.Context) error {
		defer client.Close()
		defer i.imports.archivesImported()
		// The pause image alone first: the kubelet waits for it, and on two
		// cores it took 0.9 s instead of 0.1 s while the others imported
		// beside it.
		i.err = importBundled(ctx, client, record, first)
		close(i.imported)
		if i.err != nil {
			return i.err
		}
		// The user's archives beside the other bundled images, not after
		// them: a user's pod should not wait for CoreDNS's image.
		var imports errgroup.Group
		imports.Go(func() error { return importBundled(ctx, client, record, rest) })
		imports.Go(func() error {
			began := time.Now()
			count := importArchives(ctx, client, record, i.Layout.ImagesDir())
			if err := record.save(); err != nil {
				klog.ErrorS(err, "Could not record the imported images; the next start imports them again")
			}
			i.imports.archivesImported()
			klog.InfoS("Image archives imported", "dir", i.Layout.ImagesDir(), "imported", count, "took", time.Since(began).Round(time.Millisecond))
			return nil
		})
		if err := imports.Wait(); err != nil {
			return err
		}
		<-ctx.Done()
		return nil
	})
	return nil
}

// bundledImage is one archive the binary carries, and its import's
// progress for the pulls waiting on it.
type bundledImage struct {
	bundle.Image
	*bundledImport
}

// listBundled reads the bundled archives' references into i.imports and
// returns the pause image's archive apart from the others.
func (i *Images) listBundled() (pause, others []bundledImage, err error) {
	archives, err := bundle.Images()
	if err != nil {
		return nil, nil, err
	}
	i.imports = newStartImports()
	for _, archive := range archives {
		refs, err := archive.References()
		if err != nil {
			return nil, nil, err
		}
		isPause := slices.Contains(refs, PauseImage)
		// The others only when a pull asks for one: most workers never run
		// CoreDNS or metrics-server, and on a server their imports' CPU
		// (3-4 s on two cores, Traefik the most) slowed the API server's
		// start that Node Ready waits for, while the add-ons' pods were no
		// later for pulling them (TestNodeNumbers, 5 runs: Node Ready
		// 4.92 s -> 4.50 s, add-ons 22.9 s -> 23.6 s).
		image := bundledImage{Image: archive, bundledImport: i.imports.addBundled(refs, !isPause)}
		if isPause {
			pause = append(pause, image)
		} else {
			others = append(others, image)
		}
	}
	return pause, others, nil
}

// Imported waits until the pause image is imported, and says whether it
// was.
func (i *Images) Imported(ctx context.Context) error {
	select {
	case <-i.imported:
		return i.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// pinned keeps the kubelet's image GC away from an image (containerd's CRI
// reports it pinned). Every image monokube imports carries it: with no
// registry to pull from, an image removed under disk pressure would leave
// its pods in ImagePullBackOff until the next start imports it again (k3s
// and k0s pin their air-gap images for the same reason). `crictl rmi`
// still removes one.
const pinnedLabel, pinnedValue = "io.cri-containerd.pinned", "pinned"

var pinned = map[string]string{pinnedLabel: pinnedValue}

// importBundled imports the images the binary carries, each once it is
// wanted, pinned so the kubelet's image GC never removes them. Each archive
// is decompressed, hashed and unpacked on its own: on several cores they
// import side by side.
func importBundled(ctx context.Context, client *containerd.Client, record *importRecord, bundled []bundledImage) error {
	var imports errgroup.Group
	for _, image := range bundled {
		imports.Go(func() error {
			select {
			case <-image.wanted:
			case <-ctx.Done():
				return nil
			}
			defer close(image.done)
			source := "bundled " + image.File
			if record.current(ctx, client, source, image.SHA256) {
				return nil
			}
			file, err := bundle.OpenImage(image.File)
			if err != nil {
				return err
			}
			defer file.Close()
			images, err := importArchive(ctx, client, file, source, pinned)
			if err != nil {
				return err
			}
			record.set(source, image.SHA256, images)
			if err := record.save(); err != nil {
				klog.ErrorS(err, "Could not record the imported images; the next start imports them again")
			}
			return nil
		})
	}
	return imports.Wait()
}

// importArchives imports each *.tar in dir that changed since it was
// imported, and returns how many it imported. One bad archive must not keep
// the node down: it is logged and the others go on.
func importArchives(ctx context.Context, client *containerd.Client, record *importRecord, dir string) int {
	archives, err := filepath.Glob(filepath.Join(dir, "*.tar"))
	if err != nil {
		klog.ErrorS(err, "Could not list image archives", "dir", dir)
		return 0
	}
	count := 0
	for _, path := range archives {
		info, err := os.Stat(path)
		if err != nil {
			klog.ErrorS(err, "Could not read image archive", "path", path)
			continue
		}
		key := fileKey(info)
		if record.current(ctx, client, path, key) {
			klog.V(2).InfoS("Image archive already imported", "path", path)
			// Imported before archives were pinned: pin them now.
			if err := record.pin(ctx, client, path); err != nil {
				klog.ErrorS(err, "Could not pin the images of an archive; the kubelet's image GC may remove them", "path", path)
			}
			continue
		}
		// A big archive takes minutes on a slow disk: say how far it is,
		// so a start that seems stuck can be told from one that is busy.
		var progress func(done, total int64)
		if info.Size() > bigArchive {
			progress = logProgress(path)
		}
		images, err := importFile(ctx, client, path, progress)
		if err != nil {
			klog.ErrorS(err, "Could not import image archive", "path", path)
			continue
		}
		record.set(path, key, images)
		count++
	}
	return count
}

// bigArchive is the size from which a start logs an archive's import
// progress; smaller ones import in seconds.
const bigArchive = 100 << 20

// logProgress returns an import progress callback that logs the archive at
// path about every tenth of it.
func logProgress(path string) func(done, total int64) {
	logged := -1
	return func(done, total int64) {
		// Tenths, not bytes: a line per 32 KiB read would bury the log.
		tenth := int(done * 10 / max(total, 1))
		if tenth == logged || tenth >= 10 {
			// The whole archive read is said by importArchive's line per
			// image, after the unpack.
			return
		}
		logged = tenth
		klog.InfoS("Importing image archive", "path", path, "done", fmt.Sprintf("%d%%", tenth*10), "mib", done>>20, "sizeMiB", total>>20)
	}
}

// importFile imports the archive at path. progress, when not nil, is told
// the bytes of the archive read so far and its size, as the import reads it.
func importFile(ctx context.Context, client *containerd.Client, path string, progress func(done, total int64)) ([]importedImage, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open image archive: %w", err)
	}
	defer file.Close()
	var archive io.Reader = file
	if progress != nil {
		info, err := file.Stat()
		if err != nil {
			return nil, fmt.Errorf("image archive: %w", err)
		}
		progress(0, info.Size())
		archive = &progressReader{Reader: file, total: info.Size(), report: progress}
	}
	return importArchive(ctx, client, archive, path, pinned)
}

// progressReader tells report how many bytes were read through it.
type progressReader struct {
	io.Reader
	done, total int64
	report      func(done, total int64)
}

func (r *progressReader) Read(p []byte) (int, error) {
	n, err := r.Reader.Read(p)
	if n > 0 {
		r.done += int64(n)
		r.report(r.done, r.total)
	}
	return n, err
}

// ImportFile imports one image archive into the containerd of the node
// whose paths are given, for `monokube images import` on a running node.
// progress, when not nil, is told as the import reads the archive how many
// of its bytes it has read; it is told done == total when containerd has
// read it all, before the unpack, and ImportFile returns when the unpack is
// done too.
func ImportFile(ctx context.Context, layout datadir.Layout, path string, progress func(done, total int64)) error {
	client, err := containerd.New(layout.ContainerdSocket(), containerd.WithDefaultNamespace(criNamespace))
	if err != nil {
		return fmt.Errorf("connect to containerd: %w", err)
	}
	defer client.Close()
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("image archive: %w", err)
	}
	images, err := importFile(ctx, client, path, progress)
	if err != nil {
		return err
	}
	// Recorded, so the node's next start does not import it again. A start
	// running at this moment may save its own record over this one; the
	// archive is then imported once more, nothing worse.
	record := loadImportRecord(layout.ImportRecordFile())
	record.set(path, fileKey(info), images)
	return record.save()
}

// importArchive imports a docker-archive or OCI tarball and unpacks it for
// overlayfs, logging one line per image.
func importArchive(ctx context.Context, client *containerd.Client, archive io.Reader, source string, labels map[string]string) ([]importedImage, error) {
	began := time.Now()
	imported, err := client.Import(ctx, archive,
		containerd.WithImportPlatform(platforms.Default()),
		containerd.WithImageLabels(labels))
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", source, err)
	}
	// containerd stops reading at the tar's end marker; a tar written by
	// GNU tar pads up to 10 KiB after it. Reading that too lets a progress
	// display of the archive (progressReader) reach its end here, before
	// the unpack's log lines, rather than never. The images are imported
	// whatever the padding holds, so an error reading it changes nothing.
	_, _ = io.Copy(io.Discard, archive)
	var images []importedImage
	for _, image := range imported {
		if err := containerd.NewImage(client, image).Unpack(ctx, "overlayfs"); err != nil {
			return nil, fmt.Errorf("unpack %s from %s: %w", image.Name, source, err)
		}
		images = append(images, importedImage{Name: image.Name, Digest: image.Target.Digest.String()})
		klog.InfoS("Imported image", "image", image.Name, "digest", image.Target.Digest.String(), "from", source, "took", time.Since(began).Round(time.Millisecond))
	}
	if len(imported) == 0 {
		return nil, fmt.Errorf("import %s: the archive names no image; tag it (docker save NAME:TAG, or an OCI index with io.containerd.image.name)", source)
	}
	return images, nil
}

func (i *Images) Ready(context.Context) error { return nil }

func (i *Images) Stop() error {
	err := i.Task.Stop(10 * time.Second)
	if i.stopGate != nil {
		i.stopGate()
	}
	return err
}
