package bench

import (
	"testing"

	"github.com/monokube/monokube/test/harness"
)

// TestMain shares one unpack of the payload between the nodes and fails the
// run when a benchmark leaves anything behind (harness.Main): the start
// figures are of starts, not of a first run's unpack (internal/payload).
func TestMain(m *testing.M) {
	harness.SharePayload()
	harness.Main(m)
}
