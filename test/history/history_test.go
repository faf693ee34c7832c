package history

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

var start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// ms is a moment of a test history, in milliseconds after its start.
func ms(n int) time.Time { return start.Add(time.Duration(n) * time.Millisecond) }

// client builds the ops one test client makes, called at call and answered
// at ret (milliseconds).
type client int

func (c client) op(kind Kind, key string, outcome Outcome, call, ret int) Op {
	return Op{Client: int(c), Kind: kind, Key: key, Outcome: outcome, Call: ms(call), Return: ms(ret)}
}

func (c client) create(key, value, rv string, call, ret int) Op {
	op := c.op(Create, key, OK, call, ret)
	op.Value, op.Result = value, Object{Value: value, RV: rv}
	return op
}

func (c client) update(key, value, precondition, rv string, call, ret int) Op {
	op := c.op(Update, key, OK, call, ret)
	op.Value, op.Precondition, op.Result = value, precondition, Object{Value: value, RV: rv}
	return op
}

func (c client) get(key, value, rv string, call, ret int) Op {
	op := c.op(Get, key, OK, call, ret)
	op.Result = Object{Value: value, RV: rv}
	return op
}

func (c client) list(objects map[string]Object, call, ret int) Op {
	op := c.op(List, "", OK, call, ret)
	op.List = objects
	return op
}

// refused turns an op into one the server refused (or never answered, when
// it has no return time).
func refused(op Op, outcome Outcome) Op {
	op.Outcome, op.Result = outcome, Object{}
	if outcome == Unknown {
		op.Return = time.Time{}
	}
	return op
}

func check(t *testing.T, ops []Op, keys ...string) Report {
	t.Helper()
	report := Check(ops, keys, 10*time.Second, "")
	t.Logf("report:\n%s", report)
	return report
}

func TestSequentialHistoryIsLinearizable(t *testing.T) {
	c := client(0)
	ops := []Op{
		c.create("a", "a1", "1", 0, 1),
		c.create("b", "b1", "2", 2, 3),
		c.update("a", "a2", "1", "3", 4, 5),
		c.get("a", "a2", "3", 6, 7),
		c.list(map[string]Object{"a": {"a2", "3"}, "b": {"b1", "2"}}, 8, 9),
		c.create("c", "c1", "4", 10, 11),
		refused(c.update("b", "b2", "1", "", 12, 13), Conflict),
		refused(c.create("a", "a3", "", 14, 15), Exists),
		c.op(Delete, "b", OK, 16, 17),
		c.op(Get, "b", NotFound, 18, 19),
		refused(c.update("b", "b3", "2", "", 20, 21), NotFound),
		c.op(Delete, "b", NotFound, 22, 23),
		c.update("c", "c2", "", "5", 24, 25), // unconditional
		c.list(map[string]Object{"a": {"a2", "3"}, "c": {"c2", "5"}}, 26, 27),
	}
	report := check(t, ops, "a", "b", "c")
	if !report.OK() || len(report.Unchecked) != 0 {
		t.Fatalf("want a clean report with every key checked, got:\n%s", report)
	}
	if report.Operations != len(ops) || report.ByKind[List] != 2 || report.ByOutcome[NotFound] != 3 {
		t.Errorf("counts: %d ops, %v, %v", report.Operations, report.ByKind, report.ByOutcome)
	}
}

func TestStaleReadIsViolation(t *testing.T) {
	c := client(0)
	ops := []Op{
		c.create("a", "a1", "1", 0, 1),
		c.update("a", "a2", "1", "2", 2, 3),
		c.get("a", "a1", "1", 4, 5), // the update had returned
		c.get("a", "a2", "2", 6, 7),
		c.create("b", "b1", "3", 0, 1),
		c.get("b", "b1", "3", 8, 9),
	}
	html := filepath.Join(t.TempDir(), "history.html")
	report := Check(ops, []string{"a", "b"}, 10*time.Second, html)
	t.Logf("report:\n%s", report)
	if report.OK() || !slices.Equal(report.Violations, []string{"a"}) {
		t.Fatalf("want a violation on a only, got:\n%s", report)
	}
	if len(report.Lost) != 0 {
		t.Errorf("the final read shows the last write, nothing is lost: %v", report.Lost)
	}
	if _, err := os.Stat(html); err != nil || report.Visualization != html {
		t.Errorf("visualization not written to %s: %v %v", html, err, report.VisualizationErr)
	}
}

func TestReadMustMatchValueAndVersion(t *testing.T) {
	c := client(0)
	for _, tc := range []struct {
		name, value, rv string
	}{
		{"value never written", "x", "1"},
		{"version never returned", "a1", "5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ops := []Op{
				c.create("a", "a1", "1", 0, 1),
				c.get("a", tc.value, tc.rv, 2, 3),
				c.get("a", "a1", "1", 4, 5),
			}
			if report := check(t, ops, "a"); !slices.Equal(report.Violations, []string{"a"}) {
				t.Fatalf("want a violation on a, got:\n%s", report)
			}
		})
	}
}

func TestOverlappingOpsMayBeOrderedEitherWay(t *testing.T) {
	c1, c2, c3 := client(1), client(2), client(3)
	concurrent := []Op{
		c1.create("a", "a1", "1", 0, 1),
		// Both reads overlap the update: one sees it, one does not.
		c1.update("a", "a2", "1", "2", 10, 20),
		c2.get("a", "a1", "1", 12, 18),
		c3.get("a", "a2", "2", 13, 14),
		// Two creates race; the one refused saw the other's object.
		c1.create("b", "b1", "3", 30, 40),
		refused(c2.create("b", "b2", "", 31, 39), Exists),
		c3.get("b", "b1", "3", 32, 33),
		// A read that overlaps a delete may still see the object.
		c1.op(Delete, "b", OK, 50, 60),
		c2.get("b", "b1", "3", 55, 70),
		c3.op(Get, "b", NotFound, 61, 62),
		c3.get("a", "a2", "2", 71, 72),
	}
	if report := check(t, concurrent, "a", "b"); !report.OK() {
		t.Fatalf("overlapping ops may be ordered either way, got:\n%s", report)
	}

	// The same old read once the update has returned is stale.
	stale := append(slices.Clone(concurrent), c2.get("a", "a1", "1", 21, 22))
	if report := check(t, stale, "a", "b"); !slices.Equal(report.Violations, []string{"a"}) {
		t.Fatalf("a read of the old value after the update returned must be a violation, got:\n%s", report)
	}
}

func TestUnknownCreateMayOrMayNotHaveHappened(t *testing.T) {
	c1, c2 := client(1), client(2)
	unknown := refused(c1.create("a", "a1", "", 0, 0), Unknown)

	t.Run("happened", func(t *testing.T) {
		ops := []Op{
			unknown,
			c2.get("a", "a1", "7", 10, 11), // an RV the create never returned
			c2.update("a", "a2", "7", "8", 12, 13),
			c2.get("a", "a2", "8", 14, 15),
		}
		if report := check(t, ops, "a"); !report.OK() || len(report.Unchecked) != 0 {
			t.Fatalf("want a clean report, got:\n%s", report)
		}
	})
	t.Run("never happened", func(t *testing.T) {
		ops := []Op{
			unknown,
			c2.op(Get, "a", NotFound, 10, 11),
			c2.op(Get, "a", NotFound, 20, 21),
		}
		if report := check(t, ops, "a"); !report.OK() || len(report.Unchecked) != 0 {
			t.Fatalf("want a clean report, got:\n%s", report)
		}
	})
	t.Run("read version then other precondition", func(t *testing.T) {
		ops := []Op{
			unknown,
			c2.get("a", "a1", "7", 10, 11),
			c2.update("a", "a2", "6", "8", 12, 13),
			c2.get("a", "a2", "8", 14, 15),
		}
		if report := check(t, ops, "a"); !slices.Equal(report.Violations, []string{"a"}) {
			t.Fatalf("the read bound the RV to 7, an update requiring 6 must fail, got:\n%s", report)
		}
	})
}

func TestUnknownWriteMayTakeEffectLate(t *testing.T) {
	c1, c2 := client(1), client(2)
	ops := []Op{
		c1.create("a", "a1", "1", 0, 1),
		refused(c1.update("a", "a2", "1", "", 2, 3), Unknown),
		c2.get("a", "a1", "1", 5, 6), // not yet
		c2.get("a", "a2", "9", 10, 11),
	}
	if report := check(t, ops, "a"); !report.OK() || len(report.Unchecked) != 0 {
		t.Fatalf("an unanswered update may land after later reads, got:\n%s", report)
	}
}

func TestUpdateWithStalePreconditionIsViolation(t *testing.T) {
	c := client(0)
	ops := []Op{
		c.create("a", "a1", "1", 0, 1),
		c.update("a", "a2", "1", "2", 2, 3),
		c.update("a", "a3", "1", "3", 4, 5), // the object is at RV 2 by now
		c.get("a", "a3", "3", 6, 7),
	}
	if report := check(t, ops, "a"); !slices.Equal(report.Violations, []string{"a"}) {
		t.Fatalf("want a violation on a, got:\n%s", report)
	}
}

func TestLostAcknowledgedWrite(t *testing.T) {
	c1, c2 := client(1), client(2)
	t.Run("lost", func(t *testing.T) {
		ops := []Op{
			c1.create("a", "a1", "1", 0, 1),
			c2.op(Get, "a", NotFound, 5, 6),
		}
		report := check(t, ops, "a")
		if len(report.Lost) != 1 || !slices.Equal(report.Violations, []string{"a"}) || report.OK() {
			t.Fatalf("want one lost write and a violation on a, got:\n%s", report)
		}
	})
	t.Run("maybe deleted", func(t *testing.T) {
		ops := []Op{
			c1.create("a", "a1", "1", 0, 1),
			refused(c1.op(Delete, "a", OK, 2, 3), Unknown),
			c2.op(Get, "a", NotFound, 5, 6),
		}
		if report := check(t, ops, "a"); !report.OK() || len(report.Lost) != 0 || len(report.Unchecked) != 0 {
			t.Fatalf("an unanswered delete may have removed the object, got:\n%s", report)
		}
	})
}

func TestListMissingAcknowledgedKeyIsViolation(t *testing.T) {
	c1, c2 := client(1), client(2)
	ops := []Op{
		c1.create("a", "a1", "1", 0, 1),
		c1.create("b", "b1", "2", 2, 3),
		c2.list(map[string]Object{"a": {"a1", "1"}}, 5, 6),
		c2.get("b", "b1", "2", 7, 8),
	}
	report := check(t, ops, "a", "b")
	if !slices.Equal(report.Violations, []string{"b"}) || len(report.Lost) != 0 {
		t.Fatalf("want a violation on b only and nothing lost, got:\n%s", report)
	}
}

func TestKeyWithoutFinalReadIsUnchecked(t *testing.T) {
	c1, c2 := client(1), client(2)
	ops := []Op{
		c1.create("a", "a1", "1", 0, 10),
		c1.create("b", "b1", "2", 0, 10),
		c2.op(Get, "b", NotFound, 5, 6), // overlaps the create: not final
		c2.get("a", "a1", "1", 11, 12),
	}
	report := check(t, ops, "a", "b")
	if !report.OK() || !slices.Equal(report.Unchecked, []string{"b"}) {
		t.Fatalf("want b unchecked and the history clean, got:\n%s", report)
	}
}

func TestMalformedOpIsReportedNotChecked(t *testing.T) {
	c := client(0)
	ops := []Op{
		c.create("a", "a1", "1", 0, 1),
		c.op(Get, "a", Conflict, 2, 3),
		c.get("a", "a1", "1", 4, 5),
	}
	report := check(t, ops, "a")
	if report.OK() || len(report.Malformed) != 1 || len(report.Violations) != 0 {
		t.Fatalf("want one malformed op and no violation, got:\n%s", report)
	}
}

func TestRecorderIsSafeForConcurrentUse(t *testing.T) {
	var recorder Recorder
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 100 {
				recorder.Record(client(i).get("a", "a1", "1", 0, 1))
			}
		})
	}
	wg.Wait()
	if recorder.Count() != 800 || len(recorder.Ops()) != 800 {
		t.Fatalf("recorded %d ops, copied %d, want 800", recorder.Count(), len(recorder.Ops()))
	}
}

func TestUnansweredWriteNobodySawLandsWithinTheLimit(t *testing.T) {
	c1, c2 := client(1), client(2)
	late := int(UnansweredLimit/time.Millisecond) + 10
	ops := []Op{
		refused(c1.create("a", "a1", "", 0, 0), Unknown),
		c2.op(Get, "a", NotFound, late, late+1),
		// Only the unanswered create explains this, landing after the
		// limit; nothing ever read its value.
		c2.op(Create, "a", Exists, late+2, late+3),
		c2.op(Delete, "a", OK, late+4, late+5),
		c2.op(Get, "a", NotFound, late+6, late+7),
	}
	if report := check(t, ops, "a"); !slices.Equal(report.Violations, []string{"a"}) {
		t.Fatalf("want a violation on a, got:\n%s", report)
	}
}

func TestUnansweredDeleteThatAnEarlierDeleteExplains(t *testing.T) {
	c1, c2, c3 := client(1), client(2), client(3)
	ops := []Op{
		c1.create("a", "a1", "1", 0, 1),
		refused(c2.op(Delete, "a", OK, 2, 3), Unknown),
		c1.op(Delete, "a", OK, 4, 5),
		c3.op(Get, "a", NotFound, 6, 7),
		c1.create("a", "a2", "2", 8, 9),
		// The unanswered delete landed only now: the tight assumption
		// places it at the first absence (7) and fails; the next one
		// lets it land later.
		c3.op(Get, "a", NotFound, 20, 21),
	}
	report := check(t, ops, "a")
	if !report.OK() || len(report.Rechecked) != 1 {
		t.Fatalf("want a clean report after one recheck, got:\n%s", report)
	}
}

func TestManyUnansweredWritesStayCheap(t *testing.T) {
	// Hundreds of unanswered writes on one key, none of them ever seen:
	// placed anywhere after their call they would keep porcupine busy for
	// hours; a client is answered every 10 ms meanwhile.
	var ops []Op
	c1, c2 := client(1), client(2)
	ops = append(ops, c1.create("a", "a0", "1", 0, 1))
	for i := range 400 {
		at := 10 + 10*i
		update := c1.update("a", fmt.Sprintf("lost%d", i), "", "", at, at+1)
		ops = append(ops, refused(update, Unknown), c2.get("a", "a0", "1", at+5, at+6))
	}
	began := time.Now()
	if report := check(t, ops, "a"); !report.OK() {
		t.Fatalf("want a clean report, got:\n%s", report)
	}
	t.Logf("checked in %s", time.Since(began))
}
