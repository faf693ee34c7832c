package history

import (
	"fmt"
	"strings"
)

// Report is what Check found.
type Report struct {
	// Operations is how many ops were checked, by kind and by outcome.
	Operations int
	ByKind     map[Kind]int
	ByOutcome  map[Outcome]int
	// Keys are the keys checked: the workload keys and any other key an op
	// named.
	Keys []string
	// Violations are the keys whose history is not linearizable.
	Violations []string
	// Rechecked says which keys failed a tight assumption about unanswered
	// writes and were checked again under a looser one (not a failure).
	Rechecked []string
	// Undecided are the keys porcupine could not decide within the timeout.
	// They are not counted as linearizable.
	Undecided []string
	// Lost describes each acknowledged write missing from its key's final
	// read while no other write could have replaced it.
	Lost []string
	// Unchecked are the keys with no read after their last write, so lost
	// writes could not be looked for.
	Unchecked []string
	// Malformed describes ops that could not be checked (the caller's bug);
	// they are left out of every check.
	Malformed []string
	// Visualization is the path the HTML visualization of the violations
	// was written to, if any; VisualizationErr says why writing it failed.
	Visualization    string
	VisualizationErr error
}

// OK says whether the history passed: linearizable on every key, decided on
// every key, no lost write and nothing malformed. Unchecked keys do not fail
// it; the caller decides whether to demand a final read of every key.
func (r Report) OK() bool {
	return len(r.Violations) == 0 && len(r.Undecided) == 0 && len(r.Lost) == 0 && len(r.Malformed) == 0
}

func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d ops on %d keys (", r.Operations, len(r.Keys))
	for i, kind := range []Kind{Create, Update, Delete, Get, List} {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", kind, r.ByKind[kind])
	}
	b.WriteString("; ")
	for i, outcome := range []Outcome{OK, Exists, Conflict, NotFound, Unknown} {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", outcome, r.ByOutcome[outcome])
	}
	b.WriteString(")\n")
	fmt.Fprintf(&b, "linearizable keys: %d; violations: %d %v; undecided: %d %v\n",
		len(r.Keys)-len(r.Violations)-len(r.Undecided), len(r.Violations), r.Violations, len(r.Undecided), r.Undecided)
	for _, again := range r.Rechecked {
		fmt.Fprintf(&b, "checked again: %s\n", again)
	}
	fmt.Fprintf(&b, "lost acknowledged writes: %d; unchecked keys (no final read): %d %v\n", len(r.Lost), len(r.Unchecked), r.Unchecked)
	for _, lost := range r.Lost {
		fmt.Fprintf(&b, "  lost %s\n", lost)
	}
	if len(r.Malformed) > 0 {
		fmt.Fprintf(&b, "malformed ops: %d\n", len(r.Malformed))
		for _, op := range r.Malformed {
			fmt.Fprintf(&b, "  %s\n", op)
		}
	}
	if r.Visualization != "" {
		fmt.Fprintf(&b, "visualization: %s\n", r.Visualization)
	}
	if r.VisualizationErr != nil {
		fmt.Fprintf(&b, "visualization failed: %v\n", r.VisualizationErr)
	}
	return strings.TrimSuffix(b.String(), "\n")
}
