package harness

import (
	"crypto/tls"
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestMain fails the package when its tests leave anything on the machine.
func TestMain(m *testing.M) { Main(m) }

// TestRegistryServesPushedImageOnlyToItsUser starts the real registry on a
// test network, pushes an image from the host, and checks that /v2/ wants
// a password, that its user pulls the manifest, and that the image is
// still there after a restart. It needs root (namespaces), not monokube.
func TestRegistryServesPushedImageOnlyToItsUser(t *testing.T) {
	network := NewNetwork(t)
	registry := StartRegistry(t, network, RegistryOptions{})
	image := SleepImage(t)
	reference := registry.Push(t, "test/sleep:1", image)

	client := &http.Client{Transport: registry.Transport()}
	resp, err := client.Get("https://" + registry.Host + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /v2/ without a password: %s, want 401", resp.Status)
	}
	// The certificate names the DNS name too.
	conn, err := tls.Dial("tcp", registry.Host, &tls.Config{RootCAs: registry.roots, ServerName: registry.DNSName})
	if err != nil {
		t.Errorf("TLS as %s: %v", registry.DNSName, err)
	} else {
		conn.Close()
	}

	ref, err := name.ParseReference(reference)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Get(ref, remote.WithTransport(registry.Transport())); err == nil {
		t.Errorf("anonymous pull of %s succeeded", reference)
	}
	wantDigest, err := image.Digest()
	if err != nil {
		t.Fatal(err)
	}
	pulled := func() {
		t.Helper()
		descriptor, err := remote.Get(ref, registry.RemoteOptions()...)
		if err != nil {
			t.Fatalf("pull %s as %s: %v", reference, registry.Username, err)
		}
		if descriptor.Digest != wantDigest {
			t.Errorf("pulled %s, pushed %s", descriptor.Digest, wantDigest)
		}
		pulledImage, err := descriptor.Image()
		if err != nil {
			t.Fatal(err)
		}
		config, err := pulledImage.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if got := config.Config.Cmd; len(got) == 0 || got[0] != "sleep" {
			t.Errorf("pulled image's command is %q, want sleep", got)
		}
	}
	pulled()

	registry.Stop()
	registry.Start()
	pulled()
}

// TestRegistryServesBigImage pushes BigImage and checks the registry holds
// its random layer at full size.
func TestRegistryServesBigImage(t *testing.T) {
	network := NewNetwork(t)
	registry := StartRegistry(t, network, RegistryOptions{Username: "puller", Password: "pull-secret"})
	reference := registry.Push(t, "test/big:1", BigImage(t, 16))
	ref, err := name.ParseReference(reference)
	if err != nil {
		t.Fatal(err)
	}
	image, err := remote.Image(ref, registry.RemoteOptions()...)
	if err != nil {
		t.Fatalf("pull %s: %v", reference, err)
	}
	layers, err := image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	size, err := layers[len(layers)-1].Size()
	if err != nil {
		t.Fatal(err)
	}
	if size < 16<<20 {
		t.Errorf("top layer is %d bytes, want at least 16 MiB", size)
	}
}
