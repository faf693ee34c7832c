package podnetwork

import (
	"context"
	"strings"
	"testing"

	"github.com/monokube/monokube/internal/datadir"
)

func TestFlannelRefusesANodeIPItCannotUse(t *testing.T) {
	layout, err := datadir.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for ip, ok := range map[string]bool{"10.0.0.5": true, "fd00::5": false, "": false} {
		err := (&Flannel{Layout: layout, NodeIP: ip, ClusterCIDR: "10.42.0.0/16", Backend: "vxlan"}).Init(context.Background())
		if ok && err != nil {
			t.Errorf("node IP %q: %v", ip, err)
		}
		if !ok && (err == nil || !strings.Contains(err.Error(), "IPv4 node IP")) {
			t.Errorf("node IP %q: error %v, want one asking for an IPv4 node IP", ip, err)
		}
	}
}
