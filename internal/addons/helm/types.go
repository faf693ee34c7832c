// Package helm reconciles HelmChart and HelmChartConfig objects
// (helm.cattle.io/v1, the API k3s users already write) in the server
// process with the Helm v3 SDK: install on create, upgrade when the chart
// or its values change, uninstall on delete, with status and Events.
package helm

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The kinds, as k3s's helm-controller defines them.
var (
	chartsResource  = schema.GroupVersionResource{Group: "helm.cattle.io", Version: "v1", Resource: "helmcharts"}
	configsResource = schema.GroupVersionResource{Group: "helm.cattle.io", Version: "v1", Resource: "helmchartconfigs"}
)

// finalizer holds a HelmChart until its release is uninstalled.
const finalizer = "helm.monokube.io/uninstall"

// chartSpec is the part of HelmChart.spec we act on; unknown fields
// (k3s's job image, bootstrap, ...) are accepted and ignored.
type chartSpec struct {
	// Chart is a chart name in Repo, or a static chart
	// ("https://%{KUBERNETES_API}%/static/charts/NAME.tgz", a file in
	// <data-dir>/static/charts).
	Chart           string                        `json:"chart"`
	Repo            string                        `json:"repo"`
	Version         string                        `json:"version"`
	TargetNamespace string                        `json:"targetNamespace"`
	CreateNamespace bool                          `json:"createNamespace"`
	ValuesContent   string                        `json:"valuesContent"`
	Set             map[string]intstr.IntOrString `json:"set"`
	// ChartContent is a base64-encoded chart archive (.tgz).
	ChartContent string `json:"chartContent"`
	// Timeout bounds one install or upgrade (a Go duration); default 5m.
	Timeout string `json:"timeout"`
}

// configSpec is HelmChartConfig.spec: values that override the chart's,
// kept apart so a user can change a chart someone else ships.
type configSpec struct {
	ValuesContent string `json:"valuesContent"`
}
