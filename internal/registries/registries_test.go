package registries

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/monokube/monokube/internal/config"
)

func TestParseObject(t *testing.T) {
	for path, want := range map[string]object{
		"/v2/library/busybox/manifests/latest":        {"library/busybox", "manifests", "latest"},
		"/v2/a/b/c/blobs/sha256:abc":                  {"a/b/c", "blobs", "sha256:abc"},
		"/v2/blobs/manifests/1":                       {"blobs", "manifests", "1"},
		"/v2/x/manifests/sha256:0123456789abcdef0123": {"x", "manifests", "sha256:0123456789abcdef0123"},
	} {
		got, ok := parseObject(path)
		if !ok || got != want {
			t.Errorf("parseObject(%q) = %+v, %v; want %+v", path, got, ok, want)
		}
	}
	for _, path := range []string{"/v2/", "/v2/x/tags/list", "/v1/x/manifests/1", "/v2/x/manifests/"} {
		if got, ok := parseObject(path); ok {
			t.Errorf("parseObject(%q) = %+v; want refused", path, got)
		}
	}
}

func TestSourcesAndRewrites(t *testing.T) {
	s := &Settings{Mirrors: map[string]config.RegistryMirror{
		"docker.io": {Endpoint: []string{"https://mirror.example:5000", "http://second.example"}, Rewrite: map[string]string{"^library/(.*)": "hub/$1"}},
		"*":         {Endpoint: []string{"https://everything.example"}},
	}}
	var got []string
	for _, src := range sources(s, "docker.io") {
		got = append(got, src.endpoint.String()+" "+src.configKey+" "+rewritten("library/nginx", src.rewrite))
	}
	want := []string{
		"https://mirror.example:5000 mirror.example:5000 hub/nginx",
		"http://second.example second.example hub/nginx",
		// The registry itself last, under its own name, not rewritten.
		"https://registry-1.docker.io docker.io library/nginx",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("sources:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	other := sources(s, "quay.io")
	if len(other) != 2 || other[0].endpoint.Host != "everything.example" || other[1].endpoint.Host != "quay.io" {
		t.Fatalf("a registry without its own entry takes \"*\": %+v", other)
	}
}

func TestLocalSettingsOverrideTheCluster(t *testing.T) {
	cluster := Settings{
		Mirrors:        map[string]config.RegistryMirror{"docker.io": {Endpoint: []string{"https://a"}}},
		Hosts:          map[string]Host{"r:5000": {Auth: &config.RegistryAuth{Username: "u", Password: "p"}}, "other": {InsecureSkipVerify: true}},
		EmbeddedMirror: true,
	}
	local := Settings{Hosts: map[string]Host{"r:5000": {CA: []byte("pem")}}, EmbeddedMirror: false}
	merged := cluster.Over(local)
	if merged.Hosts["r:5000"].Auth != nil || string(merged.Hosts["r:5000"].CA) != "pem" {
		t.Errorf("the local entry must replace the cluster's: %+v", merged.Hosts["r:5000"])
	}
	if !merged.Hosts["other"].InsecureSkipVerify || len(merged.Mirrors) != 1 || !merged.EmbeddedMirror {
		t.Errorf("the cluster's other entries and its mirror switch stay: %+v", merged)
	}
	if cluster.Hosts["r:5000"].Auth == nil {
		t.Error("Over changed the cluster's settings")
	}
}

func TestHostsFilesAreOwnedAndReplaced(t *testing.T) {
	dir := t.TempDir()
	// An operator's own file for a registry the settings do not name stays.
	mine := filepath.Join(dir, "mine.example", "hosts.toml")
	if err := os.MkdirAll(filepath.Dir(mine), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mine, []byte("server = \"https://mine.example\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := Settings{Mirrors: map[string]config.RegistryMirror{"*": {}, "r.example:5000": {}}}
	if err := writeHostsFiles(dir, s, "http://127.0.0.1:1234", "t0ken"); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"_default", "r.example_5000_"} {
		raw, err := os.ReadFile(filepath.Join(dir, sub, "hosts.toml"))
		if err != nil || !strings.Contains(string(raw), `server = "http://127.0.0.1:1234"`) || !strings.Contains(string(raw), `X-Monokube-Front-Token = "t0ken"`) {
			t.Fatalf("%s: %v\n%s", sub, err, raw)
		}
		if info, _ := os.Stat(filepath.Join(dir, sub, "hosts.toml")); info.Mode().Perm() != 0o600 {
			t.Fatalf("%s: mode %v; the token is root's", sub, info.Mode())
		}
	}
	if err := writeHostsFiles(dir, Settings{}, "http://127.0.0.1:1234", "t0ken"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "_default")); !os.IsNotExist(err) {
		t.Errorf("a registry no longer in the settings keeps its file: %v", err)
	}
	if _, err := os.Stat(mine); err != nil {
		t.Errorf("the operator's own file was removed: %v", err)
	}
}

func TestManifestMediaType(t *testing.T) {
	for raw, want := range map[string]string{
		`{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","layers":[]}`: "application/vnd.docker.distribution.manifest.v2+json",
		`{"schemaVersion":2,"manifests":[]}`:                                               "application/vnd.oci.image.index.v1+json",
		`{"schemaVersion":2,"config":{},"layers":[]}`:                                      "application/vnd.oci.image.manifest.v1+json",
	} {
		if got := manifestMediaType([]byte(raw)); got != want {
			t.Errorf("manifestMediaType(%s) = %s, want %s", raw, got, want)
		}
	}
}

func TestFrontRefusesRequestsWithoutItsToken(t *testing.T) {
	front, err := newFront(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer front.listener.Close()
	for token, want := range map[string]int{"": http.StatusUnauthorized, "wrong": http.StatusUnauthorized, front.token: http.StatusOK} {
		req := httptest.NewRequest(http.MethodGet, "/v2/", nil)
		if token != "" {
			req.Header.Set(tokenHeader, token)
		}
		rec := httptest.NewRecorder()
		front.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("token %q: %d, want %d", token, rec.Code, want)
		}
	}
}
