package history

import (
	"fmt"
	"slices"
	"time"
)

// observation is one read of one key: a Get, or a List's view of the key.
type observation struct {
	op     Op
	exists bool
	object Object
}

// seen is what the read found under its key.
func (o observation) seen() string {
	if o.exists {
		return o.object.String()
	}
	return "absent"
}

// lostWrites finds, for each key, an acknowledged write that nothing could
// have overwritten but that the key's final read does not show. Porcupine
// flags most of these too; this check names the write that was lost, which
// is what a user of the cluster would notice (an acknowledged change rolled
// back, say after a datastore restart).
//
// A key with no final read is unchecked: the caller is expected to read
// every key once the faults have ended.
func lostWrites(ops []Op, workloadKeys, keys []string, clock timeline) (lost, unchecked []string) {
	for _, key := range keys {
		var writes []Op
		var reads []observation
		for _, op := range ops {
			switch {
			case op.Kind.isWrite() && op.Key == key && (op.Outcome == OK || op.Outcome == Unknown):
				writes = append(writes, op)
			case op.Kind == Get && op.Key == key:
				reads = append(reads, observation{op: op, exists: op.Outcome == OK, object: op.Result})
			case op.Kind == List && slices.Contains(workloadKeys, key):
				object, found := op.List[key]
				reads = append(reads, observation{op: op, exists: found, object: object})
			}
		}
		final, found := finalRead(writes, reads)
		if !found {
			unchecked = append(unchecked, key)
			continue
		}
		for i, write := range writes {
			if write.Outcome != OK || overtaken(i, writes) || shows(final, write) {
				continue
			}
			lost = append(lost, fmt.Sprintf("%s: %s, acknowledged at %s; the final read (%s by client %d at %s) saw %s",
				key, write, offset(clock, write.Return), final.op.Kind, final.op.Client, offset(clock, final.op.Call), final.seen()))
		}
	}
	return lost, unchecked
}

// finalRead is the last read called after every acknowledged write had
// returned and every unanswered write had been sent, so that no write can
// land after it.
func finalRead(writes []Op, reads []observation) (observation, bool) {
	var settled time.Time
	for _, write := range writes {
		end := write.Return
		if write.Outcome == Unknown {
			end = write.Call
		}
		if end.After(settled) {
			settled = end
		}
	}
	var final observation
	found := false
	for _, read := range reads {
		if read.op.Call.After(settled) && (!found || read.op.Call.After(final.op.Call)) {
			final, found = read, true
		}
	}
	return final, found
}

// overtaken says whether another write could be ordered after writes[i]:
// one that had not returned when writes[i] was called, or one whose answer
// never came and so may land at any time.
func overtaken(i int, writes []Op) bool {
	for j, other := range writes {
		if j == i {
			continue
		}
		// Intervals are closed, as in porcupine: a write that returned the
		// instant writes[i] was called may still be ordered after it.
		if other.Outcome == Unknown || !other.Return.Before(writes[i].Call) {
			return true
		}
	}
	return false
}

// shows says whether a read sees the effect of the write.
func shows(read observation, write Op) bool {
	if write.Kind == Delete {
		return !read.exists
	}
	return read.exists && read.object.Value == write.Value
}

func offset(clock timeline, t time.Time) time.Duration { return t.Sub(clock.start) }
