package node

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"

	"github.com/monokube/monokube/internal/datadir"
)

// The kubelet ends the whole process (os.Exit, see
// internal/component/fatal-exits.md K1, K4-K6) when these fail after it
// started, by which time a server's control plane runs in the same process.
// Checked before anything starts, they fail the start with a reason.

// kubeletPort is the kubelet's API port on every address.
const kubeletPort = 10250

// containerLogLinks is where the kubelet links container logs, a host path
// it hard-codes whatever its root dir.
const containerLogLinks = "/var/log/containers"

// podResourcesSocketSlack is the longest socket path the kubelet creates
// under its root dir: pod-resources/ and a temporary name of up to 10
// digits.
var podResourcesSocketSlack = len("/pod-resources/") + 10

func (k *Kubelet) preflight() error {
	if n := len(k.Layout.KubeletRoot()) + podResourcesSocketSlack; n > datadir.MaxSocketPath {
		return fmt.Errorf("the kubelet's sockets under %s would be %d bytes long, over the %d-byte limit: use a --data-dir at least %d bytes shorter",
			k.Layout.KubeletRoot(), n, datadir.MaxSocketPath, n-datadir.MaxSocketPath)
	}
	if err := os.MkdirAll(containerLogLinks, 0o755); err != nil {
		return fmt.Errorf("the kubelet needs %s for container log links: %w", containerLogLinks, err)
	}
	listener, err := net.Listen("tcp", ":"+strconv.Itoa(kubeletPort))
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("port %d, the kubelet's, is in use: is another kubelet (k3s, k0s, kubeadm or a second monokube node) running on this machine?", kubeletPort)
	}
	if err != nil {
		return fmt.Errorf("check the kubelet's port %d: %w", kubeletPort, err)
	}
	return listener.Close()
}
