package node

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
// <data-dir>/images/ into containerd before the kubelet starts, so pods
// start without any registry. The import runs in the background from
// Start on (a server overlaps it with its control plane's start); the
// kubelet waits for Imported.
type Images struct {
	Layout datadir.Layout

	component.Task
	imported chan struct{}
	err      error
}

var _ component.Component = (*Images)(nil)

func (i *Images) Name() string { return "images" }

func (i *Images) Init(context.Context) error { return os.MkdirAll(i.Layout.ImagesDir(), 0o755) }

func (i *Images) Start(ctx context.Context) error {
	client, err := containerd.New(i.Layout.ContainerdSocket(), containerd.WithDefaultNamespace(criNamespace))
	if err != nil {
		return fmt.Errorf("connect to containerd: %w", err)
	}
	i.imported = make(chan struct{})
	i.Go(ctx, func(ctx context.Context) error {
		defer client.Close()
		began := time.Now()
		i.err = i.importAll(ctx, client)
		close(i.imported)
		if i.err != nil {
			return i.err
		}
		klog.InfoS("Images imported", "took", time.Since(began).Round(time.Millisecond))
		<-ctx.Done()
		return nil
	})
	return nil
}

// Imported waits until every image is imported, and says whether the
// bundled ones were.
func (i *Images) Imported(ctx context.Context) error {
	select {
	case <-i.imported:
		return i.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (i *Images) importAll(ctx context.Context, client *containerd.Client) error {
	bundled, err := bundle.Images()
	if err != nil {
		return err
	}
	// Each archive is decompressed, hashed and unpacked on its own: on
	// several cores they import side by side.
	var imports errgroup.Group
	for _, image := range bundled {
		imports.Go(func() error {
			file, err := bundle.OpenImage(image.File)
			if err != nil {
				return err
			}
			defer file.Close()
			// System images are pinned so the kubelet's image GC never removes them.
			return importArchive(ctx, client, file, "bundled "+image.File, map[string]string{"io.cri-containerd.pinned": "pinned"})
		})
	}
	if err := imports.Wait(); err != nil {
		return err
	}
	archives, err := filepath.Glob(filepath.Join(i.Layout.ImagesDir(), "*.tar"))
	if err != nil {
		return err
	}
	for _, path := range archives {
		file, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("open image archive: %w", err)
		}
		err = importArchive(ctx, client, file, path, nil)
		file.Close()
		if err != nil {
			// One bad archive must not keep the node down; say which and go on.
			klog.ErrorS(err, "Could not import image archive", "path", path)
		}
	}
	return nil
}

// ImportFile imports one image archive into the containerd of the node
// whose paths are given, for `monokube images import` on a running node.
func ImportFile(ctx context.Context, layout datadir.Layout, path string) error {
	client, err := containerd.New(layout.ContainerdSocket(), containerd.WithDefaultNamespace(criNamespace))
	if err != nil {
		return fmt.Errorf("connect to containerd: %w", err)
	}
	defer client.Close()
	file, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open image archive: %w", err)
	}
	defer file.Close()
	return importArchive(ctx, client, file, path, nil)
}

// importArchive imports a docker-archive or OCI tarball and unpacks it for
// overlayfs, logging one line per image.
func importArchive(ctx context.Context, client *containerd.Client, archive io.Reader, source string, labels map[string]string) error {
	began := time.Now()
	imported, err := client.Import(ctx, archive,
		containerd.WithImportPlatform(platforms.Default()),
		containerd.WithImageLabels(labels))
	if err != nil {
		return fmt.Errorf("import %s: %w", source, err)
	}
	for _, image := range imported {
		if err := containerd.NewImage(client, image).Unpack(ctx, "overlayfs"); err != nil {
			return fmt.Errorf("unpack %s from %s: %w", image.Name, source, err)
		}
		klog.InfoS("Imported image", "image", image.Name, "digest", image.Target.Digest.String(), "from", source, "took", time.Since(began).Round(time.Millisecond))
	}
	if len(imported) == 0 {
		return fmt.Errorf("import %s: the archive names no image; tag it (docker save NAME:TAG, or an OCI index with io.containerd.image.name)", source)
	}
	return nil
}

func (i *Images) Ready(context.Context) error { return nil }
func (i *Images) Stop() error                 { return i.Task.Stop(10 * time.Second) }
