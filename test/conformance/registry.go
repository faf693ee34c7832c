package conformance

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/monokube/monokube/test/harness"
)

// pulledImages are the images [Conformance] tests pull with PullAlways (an
// image volume, and the pod-certificate mTLS server): the registry serves
// these; every other image is only imported into the nodes.
var pulledImages = []string{
	"registry.k8s.io/e2e-test-images/agnhost:2.66.1",
	"registry.k8s.io/e2e-test-images/kitten:1.8",
}

// startRegistry serves pulledImages from an in-memory registry on the host's
// leg of the cluster network, so that nothing leaves the test's namespaces,
// and returns its http://address:port.
func startRegistry(t *testing.T, network *harness.Network, archive string) string {
	t.Helper()
	listener, err := net.Listen("tcp", network.Subnet+".254:0")
	if err != nil {
		t.Fatalf("registry: %v", err)
	}
	server := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	go func() { _ = server.Serve(listener) }()
	t.Cleanup(func() { _ = server.Close() })
	address := listener.Addr().String()
	for _, reference := range pulledImages {
		tag, err := name.NewTag(reference)
		if err != nil {
			t.Fatal(err)
		}
		image, err := tarball.ImageFromPath(archive, &tag)
		if err != nil {
			t.Fatalf("registry: %s from %s: %v", reference, archive, err)
		}
		target, err := name.NewTag(address+"/"+tag.RepositoryStr()+":"+tag.TagStr(), name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(target, image); err != nil {
			t.Fatalf("registry: push %s: %v", target, err)
		}
	}
	return "http://" + address
}

// mirrorRegistries makes the registry the node's containerd mirror for the
// suite's registries (a hosts.toml in the node's registry config directory,
// <data-dir>/agent/etc/containerd/certs.d), so the references stay upstream's.
func mirrorRegistries(t *testing.T, node *harness.Node, mirror string) {
	t.Helper()
	hosts := map[string]bool{}
	for _, reference := range pulledImages {
		hosts[strings.SplitN(reference, "/", 2)[0]] = true
	}
	for host := range hosts {
		dir := filepath.Join(node.DataDir, "agent", "etc", "containerd", "certs.d", host)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		config := fmt.Sprintf("server = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", "https://"+host, mirror)
		if err := os.WriteFile(filepath.Join(dir, "hosts.toml"), []byte(config), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
