package memory

import "testing"

func TestNextLoadState(t *testing.T) {
	// Samples in cores, and whether the GC is at the busy setting after each.
	steps := []struct {
		cores float64
		busy  bool
	}{
		{1.5, true}, {0.1, true}, {0.1, true}, {0.1, true}, {0.1, true},
		{0.1, false},                          // fifth quiet sample in a row
		{0.3, false},                          // neither busy nor quiet: stays idle
		{0.6, true},                           // busy at once
		{0.1, true}, {0.1, true}, {0.3, true}, // a middling sample restarts the count
		{0.1, true}, {0.1, true}, {0.1, true}, {0.1, true},
		{0.1, false},
	}
	busy, quiet := true, 0
	for i, step := range steps {
		busy, quiet = nextLoadState(busy, quiet, step.cores)
		if busy != step.busy {
			t.Fatalf("sample %d (%.1f cores): busy = %v, want %v", i, step.cores, busy, step.busy)
		}
	}
}
