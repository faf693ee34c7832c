// Package traefik is monokube's chart for the bundled Traefik (chart/,
// values documented in chart/values.yaml), deployed through the Helm
// controller from a HelmChart the add-ons write, so that a HelmChartConfig
// named traefik customises it as on k3s.
package traefik

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"embed"
	"encoding/base64"
	"fmt"
	"io/fs"
	"path"
)

//go:embed all:chart
var chart embed.FS

// Archive is the chart as a .tgz, the same bytes every time (fixed times
// and order), so the Helm controller sees no change across restarts.
func Archive() ([]byte, error) {
	var out bytes.Buffer
	zw, err := gzip.NewWriterLevel(&out, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	// fs.WalkDir visits in lexical order.
	err = fs.WalkDir(chart, "chart", func(name string, entry fs.DirEntry, err error) error {
		if err != nil || entry.IsDir() {
			return err
		}
		content, err := chart.ReadFile(name)
		if err != nil {
			return err
		}
		// Helm expects the files below a directory named after the chart.
		header := &tar.Header{Name: path.Join("traefik", name[len("chart/"):]), Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(header); err != nil {
			return err
		}
		_, err = tw.Write(content)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("traefik chart: %w", err)
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// ArchiveBase64 is Archive for a HelmChart's spec.chartContent.
func ArchiveBase64() (string, error) {
	raw, err := Archive()
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(raw), nil
}
