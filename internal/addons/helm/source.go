package helm

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/cli"
	"helm.sh/helm/v3/pkg/strvals"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// staticPrefix is how k3s users point at a chart shipped with the server.
const staticPrefix = "https://%{KUBERNETES_API}%/static/charts/"

// loadChart finds the chart a HelmChart names and returns it with the
// bytes its identity is hashed from.
func loadChart(spec chartSpec, staticDir string) (*chart.Chart, []byte, error) {
	switch {
	case spec.ChartContent != "":
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(spec.ChartContent))
		if err != nil {
			return nil, nil, fmt.Errorf("spec.chartContent is not base64: %w", err)
		}
		loaded, err := loader.LoadArchive(bytes.NewReader(raw))
		if err != nil {
			return nil, nil, fmt.Errorf("spec.chartContent is not a chart archive: %w", err)
		}
		return loaded, raw, nil
	case strings.HasPrefix(spec.Chart, staticPrefix):
		name := strings.TrimPrefix(spec.Chart, staticPrefix)
		if name == "" || strings.Contains(name, "/") || strings.HasPrefix(name, ".") {
			return nil, nil, fmt.Errorf("spec.chart %q: a static chart is a file name", spec.Chart)
		}
		return loadFile(filepath.Join(staticDir, name))
	case spec.Chart == "":
		return nil, nil, fmt.Errorf("spec.chart or spec.chartContent is required")
	}
	// A chart from a repository: needs the network.
	options := action.ChartPathOptions{RepoURL: spec.Repo, Version: spec.Version}
	settings := cli.New()
	path, err := options.LocateChart(spec.Chart, settings)
	if err != nil {
		return nil, nil, fmt.Errorf("find chart %s in %q: %w", spec.Chart, spec.Repo, err)
	}
	return loadFile(path)
}

func loadFile(path string) (*chart.Chart, []byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read chart: %w", err)
	}
	loaded, err := loader.LoadArchive(bytes.NewReader(raw))
	if err != nil {
		return nil, nil, fmt.Errorf("%s is not a chart archive: %w", path, err)
	}
	return loaded, raw, nil
}

// values merges what the release is installed with: the HelmChart's
// valuesContent, then the HelmChartConfig's over it, then spec.set.
func values(spec chartSpec, config *configSpec) (map[string]any, error) {
	base, err := chartutil.ReadValues([]byte(spec.ValuesContent))
	if err != nil {
		return nil, fmt.Errorf("spec.valuesContent: %w", err)
	}
	merged := map[string]any(base)
	if config != nil && config.ValuesContent != "" {
		override, err := chartutil.ReadValues([]byte(config.ValuesContent))
		if err != nil {
			return nil, fmt.Errorf("HelmChartConfig spec.valuesContent: %w", err)
		}
		merged = chartutil.CoalesceTables(override, merged)
	}
	for key, value := range spec.Set {
		parse := strvals.ParseInto
		if value.Type == intstr.String {
			parse = strvals.ParseIntoString // as helm --set-string: "true" stays a string
		}
		if err := parse(key+"="+value.String(), merged); err != nil {
			return nil, fmt.Errorf("spec.set.%s: %w", key, err)
		}
	}
	return merged, nil
}
