package history

import "time"

// UnansweredLimit is how long after its call an unanswered write that no
// read ever saw may still take effect. The API server gives up on a request
// after a minute (its default --request-timeout), cancelling the storage
// call with it; twice that leaves room for a request queued behind a
// partition. A write a read saw is placed before that read, however late.
const UnansweredLimit = 2 * time.Minute

// assumption is how the checker places the writes whose answer never came.
//
// Porcupine's search grows with every such write still pending on a key,
// since each may be linearized at any later moment or never: a ten-minute
// run with a few hundred of them needed more than 10 GB. So each key is
// checked under the tightest assumption first. An assumption only takes
// possible orders away, so a linearization found under it is one of the
// history itself: a pass under any assumption is a pass. A key that fails
// the tight one is checked again under the next, and only the last one
// decides a violation.
type assumption int

const (
	// seenOrNever: a write took effect only if a read saw its (unique)
	// value, and then before the first such read returned; a delete, before
	// the first answer after its call that found the key absent. Writes
	// nothing saw never happened.
	seenOrNever assumption = iota
	// withinLimit: writes a read saw are placed as above; any other may take
	// effect up to UnansweredLimit after its call, or never.
	withinLimit
)

var assumptions = []assumption{seenOrNever, withinLimit}

func (a assumption) String() string {
	if a == seenOrNever {
		return "unanswered writes took effect only if seen"
	}
	return "unanswered writes took effect within " + UnansweredLimit.String() + " or never"
}

// evidence is what the answered ops of a history tell about the writes that
// were not answered.
type evidence struct {
	// seen is, per written value, when the first read that saw it returned.
	seen map[string]time.Time
	// absent is, per key, the return times of the answers that found the key
	// absent, in call order.
	absent map[string][]time.Time
}

func gather(ops []Op) evidence {
	e := evidence{seen: map[string]time.Time{}, absent: map[string][]time.Time{}}
	saw := func(value string, at time.Time) {
		if first, ok := e.seen[value]; !ok || at.Before(first) {
			e.seen[value] = at
		}
	}
	for _, op := range ops {
		switch {
		case op.Kind == Get && op.Outcome == OK:
			saw(op.Result.Value, op.Return)
		case op.Kind == List && op.Outcome == OK:
			for _, obj := range op.List {
				saw(obj.Value, op.Return)
			}
		case op.Outcome == NotFound || (op.Kind == Create && op.Outcome == OK):
			e.absent[op.Key] = append(e.absent[op.Key], op.Return)
		}
	}
	return e
}

// place returns when an unanswered write returns under the assumption, or
// false if the assumption says it never happened and it is left out.
func (e evidence) place(op Op, a assumption, clock timeline) (int64, bool) {
	seenAt, seen := e.seen[op.Value]
	if op.Kind != Delete && seen && !seenAt.Before(op.Call) {
		return clock.at(seenAt), true
	}
	if a == withinLimit {
		return min(clock.end, clock.at(op.Call.Add(UnansweredLimit))), true
	}
	if op.Kind == Delete {
		// The earliest absence answered after the call; an earlier
		// delete may explain it instead, and then the next assumption
		// decides.
		first := time.Time{}
		for _, at := range e.absent[op.Key] {
			if !at.Before(op.Call) && (first.IsZero() || at.Before(first)) {
				first = at
			}
		}
		if !first.IsZero() {
			return clock.at(first), true
		}
	}
	return 0, false
}
