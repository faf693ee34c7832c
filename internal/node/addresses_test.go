package node

import (
	"strings"
	"testing"

	"github.com/monokube/monokube/internal/config"
)

func TestAddressesFollowTheClusterFamilies(t *testing.T) {
	single := config.NetworkSpec{PodCIDR: "10.42.0.0/16"}
	dual := config.NetworkSpec{PodCIDR: "fd00:42::/56,10.42.0.0/16"}
	for _, tc := range []struct {
		name    string
		network config.NetworkSpec
		given   []string
		want    string
		fails   string
	}{
		{"IPv4 cluster", single, []string{"10.0.0.5"}, "10.0.0.5", ""},
		{"both given, primary family first", dual, []string{"10.0.0.5", "fd00::5"}, "fd00::5,10.0.0.5", ""},
		{"IPv6 node IP in an IPv4 cluster", single, []string{"fd00::5"}, "", "has no IPv6 range"},
		{"two of one family", dual, []string{"10.0.0.5", "10.0.0.6"}, "", "both IPv4"},
		{"not an address", single, []string{"node-a"}, "", "not an IP address"},
		// Loopback holds no global IPv6 address to complete the pair.
		{"other family missing", dual, []string{"127.0.0.1"}, "", "no IPv6 address on lo"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Addresses(tc.network, tc.given)
			if tc.fails != "" {
				if err == nil || !strings.Contains(err.Error(), tc.fails) {
					t.Fatalf("got %v, %v; want an error saying %q", got, err, tc.fails)
				}
				return
			}
			if err != nil || strings.Join(got, ",") != tc.want {
				t.Fatalf("got %v, %v; want %s", got, err, tc.want)
			}
		})
	}
}
