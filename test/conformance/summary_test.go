package conformance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A run of one shape replaces that shape's section and keeps the other's;
// a test counts by the pass that ran it, not by the pass that skipped it.
func TestSummaryKeepsOtherShapes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "conformance.md")
	three := shapeRun{nodes: 3, kubeVersion: "v1.37.1", wall: time.Hour, results: []result{
		{Name: "a [Conformance]", State: "passed"}, {Name: "b [Serial] [Conformance]", State: "skipped"},
		{Name: "b [Serial] [Conformance]", State: "passed"},
	}}
	if err := writeSummary(path, three); err != nil {
		t.Fatal(err)
	}
	one := shapeRun{nodes: 1, kubeVersion: "v1.37.1", wall: time.Hour, results: []result{
		{Name: "a [Conformance]", State: "passed"},
		{Name: "should have at least two untainted nodes [Conformance]", State: "failed", Reason: "only one node"},
	}}
	for i := 0; i < 2; i++ { // twice: the section is replaced, not added
		if err := writeSummary(path, one); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, want := range []string{
		"3 nodes: 2 passed, 0 failed, 0 skipped (of 2)",
		"1 node: 1 passed, 1 failed, 0 skipped (of 2)",
		"shape, not monokube",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}
	if strings.Count(text, "<!-- shape 1 -->") != 1 || strings.Index(text, "## 1 node") > strings.Index(text, "## 3 nodes") {
		t.Errorf("want one section per shape, 1 node first:\n%s", text)
	}
}
