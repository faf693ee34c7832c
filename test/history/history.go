// Package history records the operations concurrent API clients make on a
// small set of objects (ConfigMaps named by keys) and checks the recorded
// history: that it is linearizable (with porcupine), and that no write the
// server acknowledged is missing at the end.
//
// It knows nothing about Kubernetes clients: the caller classifies each
// response into an Outcome and fills in an Op.
package history

import (
	"fmt"
	"time"
)

// Kind is the API call an Op made.
type Kind int

const (
	Create Kind = iota
	Update
	Delete
	Get
	List
)

var kindNames = [...]string{Create: "create", Update: "update", Delete: "delete", Get: "get", List: "list"}

func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// isWrite says whether an op of this kind can change an object.
func (k Kind) isWrite() bool { return k == Create || k == Update || k == Delete }

// Outcome is how the server answered an Op.
type Outcome int

const (
	// OK: the call succeeded.
	OK Outcome = iota
	// Exists: a create was refused with AlreadyExists.
	Exists
	// Conflict: an update was refused because its resourceVersion
	// precondition failed.
	Conflict
	// NotFound: an update, delete or get of an absent object.
	NotFound
	// Unknown: a write whose answer never came (timeout, connection reset,
	// server killed); it may or may not have taken effect.
	Unknown
)

var outcomeNames = [...]string{OK: "ok", Exists: "exists", Conflict: "conflict", NotFound: "notfound", Unknown: "unknown"}

func (o Outcome) String() string {
	if o >= 0 && int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// Object is what the server holds under a key: the ConfigMap's data value and
// its metadata.resourceVersion.
type Object struct {
	Value string
	RV    string
}

// Op is one API call and its answer.
type Op struct {
	Client int
	Kind   Kind
	// Key names the object of a Create, Update, Delete or Get.
	Key string
	// Value is what a Create or Update writes. It must be unique per write
	// across the whole run: a read is matched to the write it saw by value.
	Value string
	// Precondition is the resourceVersion an Update requires; empty means
	// an unconditional update, which Kubernetes allows for ConfigMaps.
	Precondition string
	Outcome      Outcome
	// Result is, for a Create or Update that is OK, the value and the new
	// resourceVersion the server returned; for a Get that is OK, what was
	// read.
	Result Object
	// List is, for a List that is OK, every workload key the list returned;
	// a key absent from the map was not there.
	List map[string]Object
	// Call is when the request was sent and Return when its answer came.
	// Return is ignored for Unknown: such a write may take effect at any
	// moment after Call.
	Call, Return time.Time
}

func (op Op) String() string {
	switch op.Kind {
	case Create:
		return fmt.Sprintf("create(%s, %q) by client %d -> %s", op.Key, op.Value, op.Client, op.outcomeString())
	case Update:
		return fmt.Sprintf("update(%s, %q, rv %q) by client %d -> %s", op.Key, op.Value, op.Precondition, op.Client, op.outcomeString())
	case Delete:
		return fmt.Sprintf("delete(%s) by client %d -> %s", op.Key, op.Client, op.outcomeString())
	case Get:
		return fmt.Sprintf("get(%s) by client %d -> %s", op.Key, op.Client, op.outcomeString())
	case List:
		return fmt.Sprintf("list by client %d -> %s (%d keys)", op.Client, op.Outcome, len(op.List))
	}
	return fmt.Sprintf("%s by client %d -> %s", op.Kind, op.Client, op.Outcome)
}

func (op Op) outcomeString() string {
	if op.Outcome == OK && op.Kind != Delete {
		return fmt.Sprintf("ok %s", op.Result)
	}
	return op.Outcome.String()
}

func (o Object) String() string { return fmt.Sprintf("{%q rv %s}", o.Value, o.RV) }
