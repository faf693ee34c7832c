package podnetwork

import (
	"testing"
)

func TestLastHandshakesReadsEachPeer(t *testing.T) {
	state := "private_key=aa\nlisten_port=51820\n" +
		"public_key=p1\nendpoint=10.0.0.2:51820\nlast_handshake_time_sec=1700000000\nlast_handshake_time_nsec=5\n" +
		"public_key=p2\nendpoint=10.0.0.3:51820\nlast_handshake_time_sec=0\n" +
		"public_key=p3\nallowed_ip=10.42.3.0/24\n"
	got := lastHandshakes(state)
	want := map[string]int64{"p1": 1700000000, "p2": 0, "p3": 0}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for peer, at := range want {
		if got[peer] != at {
			t.Errorf("peer %s: last handshake %d, want %d", peer, got[peer], at)
		}
	}
}
