package podnetwork

import (
	"encoding/json"
	"testing"

	"github.com/monokube/monokube/internal/config"
	"github.com/monokube/monokube/internal/datadir"
)

type conflist struct {
	CNIVersion string `json:"cniVersion"`
	Plugins    []struct {
		Type          string `json:"type"`
		Bridge        string `json:"bridge"`
		IPMasq        bool   `json:"ipMasq"`
		IPMasqBackend string `json:"ipMasqBackend"`
		Backend       string `json:"backend"`
		MTU           int    `json:"mtu"`
		IPAM          struct {
			Type    string                `json:"type"`
			Ranges  [][]map[string]string `json:"ranges"`
			DataDir string                `json:"dataDir"`
		} `json:"ipam"`
	} `json:"plugins"`
}

func parse(t *testing.T, c *CNI) conflist {
	t.Helper()
	raw, err := c.conflist()
	if err != nil {
		t.Fatal(err)
	}
	var out conflist
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Plugins) != 2 || out.Plugins[0].Type != "bridge" || out.Plugins[1].Type != "portmap" {
		t.Fatalf("plugins %+v, want bridge then portmap", out.Plugins)
	}
	return out
}

func TestCNIConfigWithFlannel(t *testing.T) {
	layout, _ := datadir.New("/var/lib/monokube")
	network := config.Default().Spec.Network
	network.KubeProxy.Mode = config.ProxyNFTables
	parts := Components(Node{Layout: layout, Name: "n1", IPs: []string{"10.0.0.1"}}, network)
	if len(parts.Provider) != 1 {
		t.Fatalf("flannel expected as the provider, got %d components", len(parts.Provider))
	}
	flannel, cni := parts.Provider[0].(*Flannel), parts.CNI.(*CNI)
	if cni.After == nil {
		t.Error("the CNI config does not wait for flannel's network")
	}
	flannel.mtu = 1450
	cni.podCIDRs = []string{"10.42.3.0/24", "fd00:42:0:3::/64"}
	out := parse(t, cni)
	bridge, portmap := out.Plugins[0], out.Plugins[1]
	switch {
	case bridge.IPMasq:
		t.Error("with flannel the bridge must not masquerade: pods see each other's real IPs")
	case bridge.MTU != 1450:
		t.Errorf("bridge MTU %d, want flannel's 1450", bridge.MTU)
	case len(bridge.IPAM.Ranges) != 2 || bridge.IPAM.Ranges[0][0]["subnet"] != "10.42.3.0/24" || bridge.IPAM.Ranges[1][0]["subnet"] != "fd00:42:0:3::/64":
		t.Errorf("ranges %v, want one per family of the node's pod CIDRs", bridge.IPAM.Ranges)
	case bridge.IPAM.DataDir != layout.CNIIPAMDir():
		t.Errorf("IPAM state in %q, want %q", bridge.IPAM.DataDir, layout.CNIIPAMDir())
	case bridge.IPMasqBackend != "nftables" || portmap.Backend != "nftables":
		t.Errorf("an nftables node writes no iptables rules: bridge %q portmap %q", bridge.IPMasqBackend, portmap.Backend)
	case flannel.Filter != "nftables" || flannel.Backend != config.FlannelVXLAN || flannel.ClusterCIDR != "10.42.0.0/16":
		t.Errorf("flannel %+v", flannel)
	}
}

func TestCNIConfigWithoutProvider(t *testing.T) {
	layout, _ := datadir.New("/var/lib/monokube")
	network := config.Default().Spec.Network
	network.Provider = config.ProviderNone
	parts := Components(Node{Layout: layout, Name: "n1"}, network)
	if len(parts.Provider) != 0 {
		t.Fatalf("only the CNI config expected, got %d provider components", len(parts.Provider))
	}
	cni := parts.CNI.(*CNI)
	cni.podCIDRs = []string{"10.42.0.0/24"}
	bridge := parse(t, cni).Plugins[0]
	if !bridge.IPMasq || bridge.IPMasqBackend != "iptables" || bridge.MTU != 0 {
		t.Errorf("without a provider the bridge masquerades with iptables and the interface MTU: %+v", bridge)
	}
}
