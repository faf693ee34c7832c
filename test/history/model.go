package history

import (
	"fmt"
	"hash/maphash"

	"github.com/anishathalye/porcupine"
)

// unknownRV stands for the resourceVersion of an object written by a call
// whose answer never came: the write may have happened, but we never learned
// the version it got. The next read binds it; until then any precondition
// may match it. Kubernetes resourceVersions are numbers, so "?" is never real.
const unknownRV = "?"

// keyState is what the server holds under one key. Keys are independent
// objects, so the model is per key and porcupine checks each key alone.
type keyState struct {
	Exists bool
	Value  string
	RV     string
}

// modelInput is the call of a porcupine operation. A List becomes one read
// per key, a Get with fromList set so the visualization says where it came
// from.
type modelInput struct {
	Kind         Kind
	Key          string
	Value        string
	Precondition string
	FromList     bool
}

// modelOutput is the answer of a porcupine operation.
type modelOutput struct {
	Outcome Outcome
	Result  Object
}

var stateSeed = maphash.MakeSeed()

// kvModel is the sequential specification of one ConfigMap under
// create/update/delete/get. It is nondeterministic because a write whose
// answer never came (Unknown) may or may not have taken effect: the checker
// follows both branches.
var kvModel = (&porcupine.NondeterministicModel{
	Partition: partitionByKey,
	Init:      func() []interface{} { return []interface{}{keyState{}} },
	Step: func(state, input, output interface{}) []interface{} {
		next := step(state.(keyState), input.(modelInput), output.(modelOutput))
		states := make([]interface{}, len(next))
		for i, s := range next {
			states[i] = s
		}
		return states
	},
	Equal: func(a, b interface{}) bool { return a.(keyState) == b.(keyState) },
	// Hashing spares the checker's cache most Equal calls on long histories.
	Hash:              func(state interface{}) uint64 { return maphash.Comparable(stateSeed, state.(keyState)) },
	DescribeOperation: describeOperation,
	DescribeState:     func(state interface{}) string { return describeState(state.(keyState)) },
}).ToModel()

// step returns every state the object can be in after the call in produced
// the answer out from state s; none means the answer was impossible.
func step(s keyState, in modelInput, out modelOutput) []keyState {
	absent := keyState{}
	written := func(rv string) keyState { return keyState{Exists: true, Value: in.Value, RV: rv} }
	// preconditionHolds also accepts an unknown RV: we cannot tell whether
	// the precondition named the version the lost answer carried.
	preconditionHolds := in.Precondition == "" || s.RV == in.Precondition || s.RV == unknownRV
	possible := func(cond bool, next ...keyState) []keyState {
		if cond {
			return next
		}
		return nil
	}

	switch in.Kind {
	case Create:
		switch out.Outcome {
		case OK:
			return possible(!s.Exists, written(out.Result.RV))
		case Exists:
			return possible(s.Exists, s)
		case Unknown:
			if !s.Exists {
				return []keyState{s, written(unknownRV)}
			}
			return []keyState{s}
		}
	case Update:
		switch out.Outcome {
		case OK:
			return possible(s.Exists && preconditionHolds, written(out.Result.RV))
		case Conflict:
			// An unknown RV differs from every precondition, so a conflict
			// is possible there too: the lost answer may have carried
			// another version.
			conflicts := in.Precondition != "" && s.RV != in.Precondition
			return possible(s.Exists && conflicts, s)
		case NotFound:
			return possible(!s.Exists, s)
		case Unknown:
			if s.Exists && preconditionHolds {
				return []keyState{s, written(unknownRV)}
			}
			return []keyState{s}
		}
	case Delete:
		switch out.Outcome {
		case OK:
			return possible(s.Exists, absent)
		case NotFound:
			return possible(!s.Exists, s)
		case Unknown:
			if s.Exists {
				return []keyState{s, absent}
			}
			return []keyState{s}
		}
	case Get:
		switch out.Outcome {
		case OK:
			if !s.Exists || s.Value != out.Result.Value {
				return nil
			}
			if s.RV == unknownRV {
				// The read tells the version the lost answer carried.
				return []keyState{{Exists: true, Value: s.Value, RV: out.Result.RV}}
			}
			return possible(s.RV == out.Result.RV, s)
		case NotFound:
			return possible(!s.Exists, s)
		}
	}
	return nil
}

func partitionByKey(history []porcupine.Operation) [][]porcupine.Operation {
	index := map[string]int{}
	var partitions [][]porcupine.Operation
	for _, op := range history {
		key := op.Input.(modelInput).Key
		i, ok := index[key]
		if !ok {
			i = len(partitions)
			index[key] = i
			partitions = append(partitions, nil)
		}
		partitions[i] = append(partitions[i], op)
	}
	return partitions
}

func describeOperation(input, output interface{}) string {
	in, out := input.(modelInput), output.(modelOutput)
	var call string
	switch {
	case in.Kind == Create:
		call = fmt.Sprintf("create(%s, %q)", in.Key, in.Value)
	case in.Kind == Update && in.Precondition == "":
		call = fmt.Sprintf("update(%s, %q)", in.Key, in.Value)
	case in.Kind == Update:
		call = fmt.Sprintf("update(%s, %q, rv %s)", in.Key, in.Value, in.Precondition)
	case in.Kind == Delete:
		call = fmt.Sprintf("delete(%s)", in.Key)
	case in.FromList:
		call = fmt.Sprintf("list[%s]", in.Key)
	default:
		call = fmt.Sprintf("get(%s)", in.Key)
	}
	if out.Outcome != OK || in.Kind == Delete {
		return fmt.Sprintf("%s -> %s", call, out.Outcome)
	}
	if in.Kind == Get {
		return fmt.Sprintf("%s -> %q rv %s", call, out.Result.Value, out.Result.RV)
	}
	return fmt.Sprintf("%s -> ok rv %s", call, out.Result.RV)
}

func describeState(s keyState) string {
	if !s.Exists {
		return "absent"
	}
	return fmt.Sprintf("%q rv %s", s.Value, s.RV)
}
