package podnetwork

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/flannel-io/flannel/pkg/backend"
	_ "github.com/flannel-io/flannel/pkg/backend/wireguard" // registers "wireguard" (kernel devices)
	"github.com/flannel-io/flannel/pkg/subnet"
	"github.com/vishvananda/netlink"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// wireGuardDevice is flannel's name for the device, whichever
// implementation runs it, so tools and the node cleanup know it.
const wireGuardDevice = "flannel-wg"

// wireGuardOverhead is what WireGuard adds to a packet (outer IP header,
// UDP, its own header and tag), taken from the pod MTU.
const wireGuardOverhead = 80

// wireGuardKeepalive (seconds) keeps a NAT router's mapping for a node
// behind it open, so the nodes it talks to can answer at any time.
const wireGuardKeepalive = 25

// keyFileEnv is where flannel's kernel backend reads and writes the node's
// private key; both implementations share the file and its format.
const keyFileEnv = "WIREGUARD_KEY_FILE"

// wireGuardBackend picks the kernel's WireGuard (flannel's own backend)
// where the kernel has it, else WireGuard in this process over a TUN
// device. Both put the same lease on the Node, so nodes of either kind
// talk to each other. It returns the backend and which one it is.
func wireGuardBackend(manager backend.Manager, subnets subnet.Manager, external *backend.ExternalInterface, keyFile string) (backend.Backend, string, error) {
	// Flannel reads the key file's path from the environment; one node per
	// process, so setting it process-wide is safe.
	if err := os.Setenv(keyFileEnv, keyFile); err != nil {
		return nil, "", err
	}
	if kernelHasWireGuard() {
		be, err := manager.GetBackend("wireguard")
		return be, "kernel", err
	}
	return &userspaceWireGuard{subnets: subnets, external: external, keyFile: keyFile}, "userspace (wireguard-go)", nil
}

// kernelHasWireGuard creates and removes a WireGuard device to learn
// whether the kernel (or a module it loads) provides one.
func kernelHasWireGuard() bool {
	probe := &netlink.GenericLink{LinkAttrs: netlink.LinkAttrs{Name: "mk-wgprobe"}, LinkType: "wireguard"}
	if err := netlink.LinkAdd(probe); err != nil {
		return false
	}
	_ = netlink.LinkDel(probe)
	return true
}

// nodeKey reads the node's WireGuard private key, or makes and saves one.
func nodeKey(path string) (wgtypes.Key, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		key, err := wgtypes.ParseKey(strings.TrimSpace(string(data)))
		if err != nil {
			return wgtypes.Key{}, fmt.Errorf("WireGuard key %s: %w", path, err)
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return wgtypes.Key{}, fmt.Errorf("WireGuard key: %w", err)
	}
	key, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		return wgtypes.Key{}, fmt.Errorf("new WireGuard key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return wgtypes.Key{}, err
	}
	if err := os.WriteFile(path, []byte(key.String()), 0o400); err != nil {
		return wgtypes.Key{}, fmt.Errorf("save WireGuard key: %w", err)
	}
	return key, nil
}

// uapiKey is a key as WireGuard's configuration protocol writes it.
func uapiKey(key wgtypes.Key) string { return hex.EncodeToString(key[:]) }
