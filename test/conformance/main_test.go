// Package conformance runs upstream's [Conformance] tests (e2e.test and the
// ginkgo CLI, built by `make conformance` from tools/conformance at the
// Kubernetes version monokube embeds) against clusters of the real binary
// made by the test harness, with the suite's images imported into the nodes
// and no network beyond the test's own namespaces.
//
// `make test` runs a slice of quick tests on one node (MONOKUBE_CONFORMANCE=slice);
// `make conformance` runs all of them on one and on three nodes
// (MONOKUBE_CONFORMANCE=full) and writes docs/conformance.md.
package conformance

import (
	"testing"

	"github.com/monokube/monokube/test/harness"
)

// TestMain fails the suite when its tests leave anything on the machine.
func TestMain(m *testing.M) { harness.Main(m) }
