package history

import (
	"fmt"
	"slices"
	"time"

	"github.com/anishathalye/porcupine"
)

// Check checks a recorded history on the given workload keys.
//
// Each key's operations are checked for linearizability against a model of
// one object, with a porcupine timeout of timeout per key (0: no limit). A
// List counts as one read per workload key at the list's call and return
// times, a key absent from the list being a read that found nothing. That is
// weaker than checking the list as one atomic snapshot across keys: it checks
// each key's reads, not that they were all taken at one moment. Keys outside
// keys are still checked from their own ops, but lists say nothing about them.
//
// If visualizeTo is not empty and some key is not linearizable, porcupine's
// HTML visualization of those keys is written there.
func Check(ops []Op, keys []string, timeout time.Duration, visualizeTo string) Report {
	report := Report{ByKind: map[Kind]int{}, ByOutcome: map[Outcome]int{}}
	var valid []Op
	for _, op := range ops {
		report.Operations++
		report.ByKind[op.Kind]++
		report.ByOutcome[op.Outcome]++
		if reason := malformed(op); reason != "" {
			report.Malformed = append(report.Malformed, fmt.Sprintf("%s: %s", op, reason))
			continue
		}
		valid = append(valid, op)
	}
	report.Keys = allKeys(valid, keys)
	if len(valid) == 0 {
		report.Unchecked = report.Keys
		return report
	}

	clock := newTimeline(valid)
	facts := gather(valid)
	var illegal []porcupine.Operation
	pending := report.Keys
	for _, a := range assumptions {
		histories := perKey(valid, keys, clock, facts, a)
		var failed []string
		for _, key := range pending {
			switch porcupine.CheckOperationsTimeout(kvModel, histories[key], timeout) {
			case porcupine.Ok:
				continue
			case porcupine.Illegal:
				if a == assumptions[len(assumptions)-1] {
					report.Violations = append(report.Violations, key)
					illegal = append(illegal, histories[key]...)
				}
			case porcupine.Unknown:
				if a == assumptions[len(assumptions)-1] {
					report.Undecided = append(report.Undecided, key)
				}
			}
			failed = append(failed, key)
		}
		if len(failed) > 0 && a != assumptions[len(assumptions)-1] {
			report.Rechecked = append(report.Rechecked, fmt.Sprintf("%v not linearizable if %s", failed, a))
		}
		pending = failed
	}
	if visualizeTo != "" && len(illegal) > 0 {
		// The per-key checks above stop at the first violation; this one
		// records the partial linearizations the visualization draws.
		_, info := porcupine.CheckOperationsVerbose(kvModel, illegal, timeout)
		if err := porcupine.VisualizePath(kvModel, info, visualizeTo); err != nil {
			report.VisualizationErr = fmt.Errorf("visualize history to %s: %w", visualizeTo, err)
		} else {
			report.Visualization = visualizeTo
		}
	}

	report.Lost, report.Unchecked = lostWrites(valid, keys, report.Keys, clock)
	return report
}

// malformed says why an op cannot be checked, or "" if it can. Such ops are
// a bug of the caller, not of the server, so they are reported apart rather
// than turned into violations.
func malformed(op Op) string {
	allowed := map[Kind][]Outcome{
		Create: {OK, Exists, Unknown},
		Update: {OK, Conflict, NotFound, Unknown},
		Delete: {OK, NotFound, Unknown},
		Get:    {OK, NotFound},
		List:   {OK},
	}
	outcomes, known := allowed[op.Kind]
	switch {
	case !known:
		return "unknown kind"
	case !slices.Contains(outcomes, op.Outcome):
		return fmt.Sprintf("a %s cannot end %s", op.Kind, op.Outcome)
	case op.Kind != List && op.Key == "":
		return "no key"
	case op.Call.IsZero():
		return "no call time"
	case op.Outcome != Unknown && op.Return.Before(op.Call):
		return "returned before it was called"
	}
	return ""
}

// allKeys is the workload keys followed by any other key the ops name, in
// the order first seen, so the report lists keys in a stable order.
func allKeys(ops []Op, keys []string) []string {
	all := slices.Clone(keys)
	for _, op := range ops {
		if op.Kind != List && !slices.Contains(all, op.Key) {
			all = append(all, op.Key)
		}
	}
	return all
}

// timeline turns wall times into porcupine's int64 timestamps.
type timeline struct {
	start time.Time
	// end is after every call and every answer: no unanswered write is
	// placed later.
	end int64
}

func newTimeline(ops []Op) timeline {
	start := ops[0].Call
	for _, op := range ops {
		if op.Call.Before(start) {
			start = op.Call
		}
	}
	clock := timeline{start: start}
	for _, op := range ops {
		clock.end = max(clock.end, clock.at(op.Call)+1)
		if op.Outcome != Unknown {
			clock.end = max(clock.end, clock.at(op.Return)+1)
		}
	}
	return clock
}

// at is t in nanoseconds since the earliest call.
func (c timeline) at(t time.Time) int64 { return t.Sub(c.start).Nanoseconds() }

// perKey splits the ops into porcupine histories by key, a List becoming one
// read of every workload key, and unanswered writes placed as the
// assumption says.
func perKey(ops []Op, keys []string, clock timeline, facts evidence, a assumption) map[string][]porcupine.Operation {
	histories := map[string][]porcupine.Operation{}
	add := func(op Op, in modelInput, out modelOutput) {
		returned := clock.at(op.Return)
		if op.Outcome == Unknown {
			var happened bool
			if returned, happened = facts.place(op, a, clock); !happened {
				return
			}
		}
		histories[in.Key] = append(histories[in.Key], porcupine.Operation{
			ClientId: op.Client,
			Input:    in,
			Call:     clock.at(op.Call),
			Output:   out,
			Return:   returned,
		})
	}
	for _, op := range ops {
		if op.Kind != List {
			add(op, modelInput{Kind: op.Kind, Key: op.Key, Value: op.Value, Precondition: op.Precondition},
				modelOutput{Outcome: op.Outcome, Result: op.Result})
			continue
		}
		for _, key := range keys {
			in := modelInput{Kind: Get, Key: key, FromList: true}
			if obj, found := op.List[key]; found {
				add(op, in, modelOutput{Outcome: OK, Result: obj})
			} else {
				add(op, in, modelOutput{Outcome: NotFound})
			}
		}
	}
	return histories
}
