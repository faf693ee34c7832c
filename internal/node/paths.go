// Package node runs what makes a machine a Kubernetes node: containerd with
// runc and CNI, the kubelet and kube-proxy, each as a lifecycle component.
package node

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// DefaultName is a node's name unless one is given: the lower-cased hostname.
func DefaultName() (string, error) {
	hostname, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("hostname: %w", err)
	}
	return strings.ToLower(hostname), nil
}

// Paths are where one node keeps its files. Everything lives in the data
// dir except sockets and runtime state, which go to a short directory under
// /run: unix socket paths are limited to 108 bytes (containerd's shim socket
// dir to 42), and a deep data dir would overflow them.
type Paths struct {
	DataDir string
	// Run is /run/monokube/<8 hex of the data dir>: unique per data dir, so
	// two nodes on one machine never share sockets.
	Run string
}

// NewPaths derives a node's paths from its absolute data dir.
func NewPaths(dataDir string) Paths {
	sum := sha256.Sum256([]byte(dataDir))
	return Paths{DataDir: dataDir, Run: filepath.Join("/run/monokube", hex.EncodeToString(sum[:4]))}
}

func (p Paths) Agent(elem ...string) string {
	return filepath.Join(append([]string{p.DataDir, "agent"}, elem...)...)
}
func (p Paths) ContainerdRoot() string   { return filepath.Join(p.DataDir, "containerd") }
func (p Paths) ContainerdState() string  { return filepath.Join(p.Run, "containerd") }
func (p Paths) ContainerdSocket() string { return filepath.Join(p.Run, "containerd.sock") }
func (p Paths) ShimSockets() string      { return filepath.Join(p.Run, "s") }
func (p Paths) RuncRoot() string         { return filepath.Join(p.Run, "runc") }
func (p Paths) CNIConfDir() string       { return p.Agent("etc", "cni", "net.d") }
func (p Paths) StaticPods() string       { return filepath.Join(p.DataDir, "manifests", "pods") }
func (p Paths) ImagesDir() string        { return filepath.Join(p.DataDir, "images") }
func (p Paths) KubeletRoot() string      { return filepath.Join(p.DataDir, "kubelet") }
func (p Paths) PodLogs() string          { return filepath.Join(p.DataDir, "logs", "pods") }
