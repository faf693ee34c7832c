package integration

import (
	"testing"

	"github.com/monokube/monokube/test/harness"
)

// TestMain fails the suite when its tests leave anything on the machine.
func TestMain(m *testing.M) { harness.Main(m) }
