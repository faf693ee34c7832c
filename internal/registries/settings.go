// Package registries gives every node the cluster's registry settings
// (k3s's registries.yaml: mirrors, rewrites, credentials, TLS) and the
// embedded peer-to-peer mirror. containerd sends the pulls of every
// registry the settings name to a front on the node's loopback; the front
// tries the node's peers, then the mirrors (rewriting names), then the
// registry, with the credentials and TLS the settings give. Upstream
// containerd has no rewrites (k3s patches its containerd for them), and
// doing credentials in the front too lets a change apply at once, with no
// restart of containerd or of any container.
package registries

import (
	"fmt"
	"maps"
	"os"
	"slices"

	"github.com/monokube/monokube/internal/config"
)

// Settings are a node's registry settings with every file read, so a
// server can hand them to workers that do not have its files.
type Settings struct {
	Mirrors map[string]config.RegistryMirror `json:"mirrors,omitempty"`
	Hosts   map[string]Host                  `json:"hosts,omitempty"`
	// EmbeddedMirror is the cluster's: only a server's settings set it.
	EmbeddedMirror bool `json:"embeddedMirror,omitempty"`
}

// Host is one registry or endpoint host's credentials and TLS material
// (PEM), as config.RegistryConfig names them.
type Host struct {
	Auth               *config.RegistryAuth `json:"auth,omitempty"`
	CA                 []byte               `json:"ca,omitempty"`
	Cert               []byte               `json:"cert,omitempty"`
	Key                []byte               `json:"key,omitempty"`
	InsecureSkipVerify bool                 `json:"insecureSkipVerify,omitempty"`
}

// Resolve reads the files spec names.
func Resolve(spec config.RegistriesSpec) (Settings, error) {
	s := Settings{Mirrors: maps.Clone(spec.Mirrors), Hosts: map[string]Host{}, EmbeddedMirror: spec.EmbeddedMirror}
	for name, cfg := range spec.Configs {
		host := Host{Auth: cfg.Auth}
		if t := cfg.TLS; t != nil {
			host.InsecureSkipVerify = t.InsecureSkipVerify
			for _, f := range []struct {
				path string
				into *[]byte
			}{{t.CAFile, &host.CA}, {t.CertFile, &host.Cert}, {t.KeyFile, &host.Key}} {
				if f.path == "" {
					continue
				}
				raw, err := os.ReadFile(f.path)
				if err != nil {
					return Settings{}, fmt.Errorf("registry %s: %w", name, err)
				}
				*f.into = raw
			}
		}
		s.Hosts[name] = host
	}
	return s, nil
}

// Over returns s with local's entries added, a registry or host that both
// name taking local's (a worker's own file over the cluster's).
func (s Settings) Over(local Settings) Settings {
	merged := Settings{Mirrors: maps.Clone(s.Mirrors), Hosts: maps.Clone(s.Hosts), EmbeddedMirror: s.EmbeddedMirror}
	if merged.Mirrors == nil {
		merged.Mirrors = map[string]config.RegistryMirror{}
	}
	if merged.Hosts == nil {
		merged.Hosts = map[string]Host{}
	}
	maps.Copy(merged.Mirrors, local.Mirrors)
	maps.Copy(merged.Hosts, local.Hosts)
	return merged
}

// Registries are the registries whose pulls go through the node's front:
// every one named under mirrors or configs. "*" stands for all others.
func (s Settings) Registries() []string {
	names := map[string]bool{}
	for name := range s.Mirrors {
		names[name] = true
	}
	for name := range s.Hosts {
		names[name] = true
	}
	return slices.Sorted(maps.Keys(names))
}

// mirrorFor is the mirror entry that applies to registry: its own, else "*".
func (s Settings) mirrorFor(registry string) (config.RegistryMirror, bool) {
	if m, ok := s.Mirrors[registry]; ok {
		return m, true
	}
	m, ok := s.Mirrors["*"]
	return m, ok
}

// peersServe reports whether the embedded mirror applies to registry: it is
// on, and the registry is listed under mirrors (or "*" is).
func (s Settings) peersServe(registry string) bool {
	_, listed := s.mirrorFor(registry)
	return s.EmbeddedMirror && listed
}
