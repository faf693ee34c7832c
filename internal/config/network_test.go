package config

import (
	"errors"
	"strings"
	"testing"
)

func TestDualStackAndIPv6OnlyRanges(t *testing.T) {
	for _, tc := range []struct {
		name             string
		raw              []byte
		families         string
		dns              string
		podV6, serviceV4 string
	}{
		{"dual-stack", doc("spec:", "  network:", "    podCIDR: 10.42.0.0/16,fd00:42::/56", "    serviceCIDR: 10.43.0.0/16,fd00:43::/112"),
			"IPv4,IPv6", "10.43.0.10", "fd00:42::/56", "10.43.0.0/16"},
		{"IPv6 primary", doc("spec:", "  network:", "    podCIDR: fd00:42::/56,10.42.0.0/16", "    serviceCIDR: fd00:43::/112,10.43.0.0/16"),
			"IPv6,IPv4", "fd00:43::a", "fd00:42::/56", "10.43.0.0/16"},
		{"IPv6 only", doc("spec:", "  network:", "    podCIDR: fd00:42::/56", "    serviceCIDR: fd00:43::/112"),
			"IPv6", "fd00:43::a", "fd00:42::/56", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse(tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			network := cfg.Spec.Network
			if got := strings.Join(network.IPFamilies(), ","); got != tc.families {
				t.Errorf("families %s, want %s", got, tc.families)
			}
			if network.ClusterDNS != tc.dns {
				t.Errorf("clusterDNS %s, want %s (derived from the service range)", network.ClusterDNS, tc.dns)
			}
			if got := CIDRFor(network.PodCIDR, "IPv6"); got != tc.podV6 {
				t.Errorf("IPv6 pod range %q, want %q", got, tc.podV6)
			}
			if got := CIDRFor(network.ServiceCIDR, "IPv4"); got != tc.serviceV4 {
				t.Errorf("IPv4 service range %q, want %q", got, tc.serviceV4)
			}
		})
	}
}

func TestMixedFamiliesNameTheFieldAndLine(t *testing.T) {
	for _, tc := range []struct {
		name     string
		raw      []byte
		path     string
		line     int
		contains string
	}{
		{"services lack the pods' IPv6", doc("spec:", "  network:", "    podCIDR: 10.42.0.0/16,fd00:42::/56", "    serviceCIDR: 10.43.0.0/16"),
			"spec.network.serviceCIDR", 4, "is IPv4 but spec.network.podCIDR is IPv4,IPv6"},
		{"IPv6 pods against the default IPv4 services", doc("spec:", "  network:", "    podCIDR: fd00:42::/56"),
			"spec.network.podCIDR", 3, "is IPv6 but spec.network.serviceCIDR is IPv4"},
		{"families in another order", doc("spec:", "  network:", "    podCIDR: 10.42.0.0/16,fd00:42::/56", "    serviceCIDR: fd00:43::/112,10.43.0.0/16"),
			"spec.network.serviceCIDR", 4, "same families in the same order"},
		{"two IPv4 ranges", doc("spec:", "  network:", "    podCIDR: 10.42.0.0/16,10.44.0.0/16"),
			"spec.network.podCIDR", 3, "one IPv4 and one IPv6"},
		{"an IPv6 pod range too small for nodes", doc("spec:", "  network:", "    podCIDR: 10.42.0.0/16,fd00:42::/96", "    serviceCIDR: 10.43.0.0/16,fd00:43::/112"),
			"spec.network.podCIDR", 3, "nodes get a /64 each"},
		{"an IPv6 service range too large", doc("spec:", "  network:", "    podCIDR: 10.42.0.0/16,fd00:42::/56", "    serviceCIDR: 10.43.0.0/16,fd00:43::/64"),
			"spec.network.serviceCIDR", 4, "a /108 for IPv6"},
		{"an IPv4 API address in an IPv6-only cluster", doc("spec:", "  api:", "    address: 10.0.0.5", "  network:", "    podCIDR: fd00:42::/56", "    serviceCIDR: fd00:43::/112"),
			"spec.api.address", 3, "is IPv4 but the first range of spec.network.serviceCIDR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.raw)
			var invalid *InvalidError
			if !errors.As(err, &invalid) {
				t.Fatalf("got %v, want an InvalidError", err)
			}
			for _, f := range invalid.Fields {
				if f.Path == tc.path && f.Line == tc.line && strings.Contains(f.Message, tc.contains) {
					return
				}
			}
			t.Errorf("no error at %s line %d containing %q in %v", tc.path, tc.line, tc.contains, invalid)
		})
	}
}
