package vm

import (
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"testing"
)

// newNetNS creates a network namespace with only loopback up, for one
// guest's qemu: its user-mode network then has no route out of the
// machine. It is removed when the test ends, after everything the test
// registered later (qemu, which runs in it).
func newNetNS(t testing.TB) string {
	t.Helper()
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	name := "vm-" + hex.EncodeToString(suffix)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("vm: ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("vm: ip netns del %s: %v: %s", name, err, out)
		}
	})
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("vm: ip -n %s link set lo up: %v: %s", name, err, out)
	}
	return name
}
