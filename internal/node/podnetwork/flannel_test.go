package podnetwork

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/monokube/monokube/internal/datadir"
)

func TestFlannelRefusesANodeWithoutAnAddressOfAFamilyItRoutes(t *testing.T) {
	layout, err := datadir.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ips, cidr, fails string
	}{
		{"10.0.0.5", "10.42.0.0/16", ""},
		{"fd00::5", "fd00:42::/56", ""},
		{"10.0.0.5,fd00::5", "10.42.0.0/16,fd00:42::/56", ""},
		{"fd00::5", "10.42.0.0/16", "no IPv4 address"},
		{"10.0.0.5", "10.42.0.0/16,fd00:42::/56", "no IPv6 address"},
		{"", "10.42.0.0/16", "no IPv4 address"},
	} {
		err := (&Flannel{Layout: layout, NodeIPs: strings.Split(tc.ips, ","), ClusterCIDR: tc.cidr, Backend: "vxlan"}).Init(context.Background())
		if tc.fails == "" && err != nil {
			t.Errorf("node IPs %q, pods %s: %v", tc.ips, tc.cidr, err)
		}
		if tc.fails != "" && (err == nil || !strings.Contains(err.Error(), tc.fails)) {
			t.Errorf("node IPs %q, pods %s: error %v, want one saying %q", tc.ips, tc.cidr, err, tc.fails)
		}
	}
}

func TestFlannelNetConfHasEachFamily(t *testing.T) {
	layout, err := datadir.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := &Flannel{Layout: layout, NodeIPs: []string{"10.0.0.5", "fd00::5"}, ClusterCIDR: "10.42.0.0/16,fd00:42::/56", Backend: "vxlan"}
	if err := f.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(layout.FlannelNetConf())
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		Network, IPv6Network   string
		EnableIPv4, EnableIPv6 bool
	}
	if err := json.Unmarshal(raw, &conf); err != nil {
		t.Fatal(err)
	}
	if conf.Network != "10.42.0.0/16" || conf.IPv6Network != "fd00:42::/56" || !conf.EnableIPv4 || !conf.EnableIPv6 {
		t.Errorf("net-conf.json %s", raw)
	}
}
