// Package traefik pins github.com/traefik/traefik/v3, which our build
// compiles (its own main, unchanged) into the image monokube.io/traefik.
// A module of its own: Traefik pins Kubernetes libraries of another
// version than ours, and needs its forks replaced as its own go.mod does.
//
// v3.6.12, not the newer v3.7.x: v3.7 needs modules the Go module proxy
// here refuses (a fork of go-http-auth, several DNS providers' SDKs that
// lego imports) and a nested module Traefik does not publish.
package traefik
