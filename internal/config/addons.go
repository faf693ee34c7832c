package config

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Add-on names, as spec.addons spells them and --disable takes them (k3s's
// spelling where k3s has the same add-on).
const (
	AddonCoreDNS       = "coredns"
	AddonMetricsServer = "metrics-server"
	AddonLocalStorage  = "local-storage"
	AddonServiceLB     = "servicelb"
	AddonHelm          = "helm-controller"
	AddonNetworkPolicy = "network-policy"
	AddonTraefik       = "traefik"
)

// AddonNames lists every add-on, in the order they are written.
var AddonNames = []string{AddonCoreDNS, AddonMetricsServer, AddonLocalStorage, AddonServiceLB, AddonHelm, AddonNetworkPolicy, AddonTraefik}

// AddonsSpec turns the bundled add-ons on and off. Every add-on is on
// unless its enabled is false; turning one off removes it from a running
// cluster at the next start.
type AddonsSpec struct {
	CoreDNS       AddonSpec        `json:"coredns"`
	MetricsServer AddonSpec        `json:"metricsServer"`
	LocalStorage  LocalStorageSpec `json:"localStorage"`
	ServiceLB     AddonSpec        `json:"serviceLB"`
	// HelmController reconciles HelmChart objects; their kinds stay
	// defined when it is off.
	HelmController AddonSpec `json:"helmController"`
	// NetworkPolicy enforces NetworkPolicies on every node (kube-router's
	// controller; needs ipset and iptables on the nodes).
	NetworkPolicy AddonSpec `json:"networkPolicy"`
	// Traefik is the ingress and Gateway API controller, deployed by the
	// Helm controller (customise it with a HelmChartConfig named traefik).
	Traefik AddonSpec `json:"traefik"`
}

// AddonSpec is the switch every add-on has.
type AddonSpec struct {
	// Enabled is true when unset.
	Enabled *bool `json:"enabled"`
}

// On reports whether the add-on runs.
func (a AddonSpec) On() bool { return a.Enabled == nil || *a.Enabled }

// LocalStorageSpec configures the local-path StorageClass.
type LocalStorageSpec struct {
	// Enabled is true when unset.
	Enabled *bool `json:"enabled"`
	// Path is the directory on each node that holds the volumes. Empty
	// means <data-dir>/storage.
	Path string `json:"path"`
}

// On reports whether the add-on runs.
func (l LocalStorageSpec) On() bool { return AddonSpec{Enabled: l.Enabled}.On() }

// switches maps each add-on's name to its enabled field: the one place
// that ties names to fields.
func (a *AddonsSpec) switches() map[string]**bool {
	return map[string]**bool{
		AddonCoreDNS:       &a.CoreDNS.Enabled,
		AddonMetricsServer: &a.MetricsServer.Enabled,
		AddonLocalStorage:  &a.LocalStorage.Enabled,
		AddonServiceLB:     &a.ServiceLB.Enabled,
		AddonHelm:          &a.HelmController.Enabled,
		AddonNetworkPolicy: &a.NetworkPolicy.Enabled,
		AddonTraefik:       &a.Traefik.Enabled,
	}
}

// Enabled reports whether the named add-on runs.
func (a AddonsSpec) Enabled(name string) bool {
	enabled, known := a.switches()[name]
	return known && AddonSpec{Enabled: *enabled}.On()
}

// Disable turns the named add-ons off, as --disable does; an unknown name
// is an error that lists the known ones.
func (a *AddonsSpec) Disable(names []string) error {
	switches := a.switches()
	for _, name := range names {
		enabled, known := switches[strings.TrimSpace(name)]
		if !known {
			return fmt.Errorf("unknown add-on %q; known add-ons: %s", name, strings.Join(AddonNames, ", "))
		}
		off := false
		*enabled = &off
	}
	return nil
}

func (v *validator) addons(addons *AddonsSpec) {
	if path := addons.LocalStorage.Path; path != "" && !filepath.IsAbs(path) {
		v.add("spec.addons.localStorage.path", "must be an absolute path, got %q", path)
	}
}
