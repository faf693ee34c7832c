package history

import "sync"

// Recorder collects the Ops of concurrent clients. The zero value is ready
// to use.
type Recorder struct {
	mu  sync.Mutex
	ops []Op
}

// Record adds one finished (or abandoned, Outcome Unknown) call. Reads that
// failed should not be recorded: they tell nothing about the objects.
func (r *Recorder) Record(op Op) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, op)
}

// Ops returns a copy of the recorded ops, in the order they were recorded.
func (r *Recorder) Ops() []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Op(nil), r.ops...)
}

// Count is the number of recorded ops.
func (r *Recorder) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ops)
}
