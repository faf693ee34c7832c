// Package gatewayconformance pins sigs.k8s.io/gateway-api at the version
// the bundled Traefik implements, for `make conformance-gateway`: our build
// compiles the project's own conformance suite (its test package,
// unchanged) and its echo server (into the image the suite's manifests
// name), so the suite runs with no registry. A module of its own: the suite
// pins Kubernetes libraries and controller-runtime of another version than
// ours.
package gatewayconformance

import _ "sigs.k8s.io/gateway-api/conformance" // the suite, built with go test -c
