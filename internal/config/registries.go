package config

import (
	"encoding/base64"
	"fmt"
	"maps"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
)

// DefaultRegistriesFile is where a node looks for a k3s-style
// registries.yaml when --private-registry does not say otherwise.
const DefaultRegistriesFile = "/etc/monokube/registries.yaml"

// RegistriesSpec is k3s's registries.yaml, with its field names (so a k3s
// user's file pastes under spec.registries unchanged), plus the cluster's
// switch for the embedded peer-to-peer mirror.
type RegistriesSpec struct {
	// Mirrors maps a registry host ("docker.io", "*" for every registry) to
	// the endpoints tried, in order, before the registry itself.
	Mirrors map[string]RegistryMirror `json:"mirrors"`
	// Configs maps a registry or endpoint host to its credentials and TLS.
	Configs map[string]RegistryConfig `json:"configs"`
	// EmbeddedMirror makes every node serve the images it holds to the other
	// nodes, which try their peers first for the registries under mirrors.
	EmbeddedMirror bool `json:"embeddedMirror"`
}

// RegistryMirror is one registry's mirror list.
type RegistryMirror struct {
	Endpoint []string `json:"endpoint,omitempty"`
	// Rewrite maps a regular expression on the repository name to its
	// replacement ("^library/(.*)": "mirror/$1"), applied at every endpoint.
	Rewrite map[string]string `json:"rewrite,omitempty"`
}

// RegistryConfig is one host's credentials and TLS settings.
type RegistryConfig struct {
	Auth *RegistryAuth `json:"auth,omitempty"`
	TLS  *RegistryTLS  `json:"tls,omitempty"`
}

// RegistryAuth is one of: username and password, auth (base64 of
// "user:password", as in a docker config.json), or an identity token.
type RegistryAuth struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	Auth          string `json:"auth,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
}

// RegistryTLS names files on the machine whose config names them; a server
// hands their contents to the workers.
type RegistryTLS struct {
	CAFile             string `json:"ca_file,omitempty"`
	CertFile           string `json:"cert_file,omitempty"`
	KeyFile            string `json:"key_file,omitempty"`
	InsecureSkipVerify bool   `json:"insecure_skip_verify,omitempty"`
}

// registriesFile is what a registries.yaml may hold: k3s's two sections.
// The embedded mirror is the cluster's choice, made on the servers.
type registriesFile struct {
	Mirrors map[string]RegistryMirror `json:"mirrors,omitempty"`
	Configs map[string]RegistryConfig `json:"configs,omitempty"`
}

// LoadRegistries reads a k3s registries.yaml. A missing file is no error
// (nothing to add); a bad field is reported with its line.
func LoadRegistries(path string) (RegistriesSpec, error) {
	raw, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return RegistriesSpec{}, nil
	}
	if err != nil {
		return RegistriesSpec{}, fmt.Errorf("read registries file: %w", err)
	}
	var file registriesFile
	lines, problems, err := Decode(raw, &file)
	if err != nil {
		return RegistriesSpec{}, fmt.Errorf("registries file %s: %w", path, err)
	}
	if lines == nil {
		return RegistriesSpec{}, &InvalidError{File: path, Fields: problems}
	}
	spec := RegistriesSpec{Mirrors: file.Mirrors, Configs: file.Configs}
	v := validator{lines: lines, errs: problems}
	v.registries("", &spec)
	if len(v.errs) > 0 {
		return RegistriesSpec{}, &InvalidError{File: path, Fields: v.errs}
	}
	return spec, nil
}

// registryHost matches a registry or endpoint host: a name or address with
// an optional port.
var registryHost = regexp.MustCompile(`^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(:[0-9]{1,5})?$`)

// registries checks a RegistriesSpec found at prefix ("spec.registries",
// or "" for a registries.yaml).
func (v *validator) registries(prefix string, r *RegistriesSpec) {
	for _, host := range slices.Sorted(maps.Keys(r.Mirrors)) {
		mirror := r.Mirrors[host]
		path := join(join(prefix, "mirrors"), host)
		if host != "*" && !registryHost.MatchString(host) {
			v.add(path, "%q is not a registry host (name or address, optional :port) or \"*\"", host)
		}
		for i, endpoint := range mirror.Endpoint {
			if err := checkEndpoint(endpoint); err != nil {
				v.add(fmt.Sprintf("%s[%d]", join(path, "endpoint"), i), "%v", err)
			}
		}
		for _, pattern := range slices.Sorted(maps.Keys(mirror.Rewrite)) {
			if _, err := regexp.Compile(pattern); err != nil {
				v.add(join(join(path, "rewrite"), pattern), "not a regular expression: %v", err)
			}
		}
	}
	for _, host := range slices.Sorted(maps.Keys(r.Configs)) {
		cfg := r.Configs[host]
		path := join(join(prefix, "configs"), host)
		if !registryHost.MatchString(host) {
			v.add(path, "%q is not a registry host (name or address, optional :port)", host)
		}
		if a := cfg.Auth; a != nil {
			v.registryAuth(join(path, "auth"), a)
		}
		if t := cfg.TLS; t != nil {
			tlsPath := join(path, "tls")
			for _, f := range []struct{ field, file string }{{"ca_file", t.CAFile}, {"cert_file", t.CertFile}, {"key_file", t.KeyFile}} {
				field, file := f.field, f.file
				if file == "" {
					continue
				}
				if _, err := os.ReadFile(file); err != nil {
					v.add(join(tlsPath, field), "cannot read it: %v", err)
				}
			}
			if (t.CertFile == "") != (t.KeyFile == "") {
				v.add(tlsPath, "cert_file and key_file go together (a client certificate and its key)")
			}
		}
	}
}

func (v *validator) registryAuth(path string, a *RegistryAuth) {
	switch {
	case a.Auth != "":
		decoded, err := base64.StdEncoding.DecodeString(a.Auth)
		if err != nil || !strings.Contains(string(decoded), ":") {
			v.add(join(path, "auth"), "must be base64 of \"user:password\"")
		}
	case a.IdentityToken != "":
	case a.Username == "" || a.Password == "":
		v.add(path, "give username and password, auth, or identitytoken")
	}
}

// checkEndpoint accepts what containerd can reach: an http or https URL of
// a host, with at most the "/v2" path registries serve under.
func checkEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("%q must be an http:// or https:// URL of a registry", endpoint)
	}
	if u.User != nil {
		return fmt.Errorf("%q: put credentials under configs.<host>.auth, not in the URL", u.Redacted())
	}
	if p := strings.TrimSuffix(u.Path, "/"); p != "" && p != "/v2" {
		return fmt.Errorf("%q: a path other than /v2 is not supported", endpoint)
	}
	return nil
}
