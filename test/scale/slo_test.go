package scale

import (
	"strings"
	"testing"
	"time"
)

// A recorded scrape: 100 pod creations (90 under 50 ms, 9 more under
// 100 ms, 1 under 1 s), 10 cluster-wide LISTs, and a WATCH that the SLO
// leaves out.
const recorded = `# HELP apiserver_request_sli_duration_seconds x
# TYPE apiserver_request_sli_duration_seconds histogram
apiserver_request_sli_duration_seconds_bucket{component="apiserver",group="",resource="pods",scope="resource",subresource="",verb="POST",version="v1",le="0.05"} 90
apiserver_request_sli_duration_seconds_bucket{component="apiserver",group="",resource="pods",scope="resource",subresource="",verb="POST",version="v1",le="0.1"} 99
apiserver_request_sli_duration_seconds_bucket{component="apiserver",group="",resource="pods",scope="resource",subresource="",verb="POST",version="v1",le="1"} 100
apiserver_request_sli_duration_seconds_bucket{component="apiserver",group="",resource="pods",scope="resource",subresource="",verb="POST",version="v1",le="+Inf"} 100
apiserver_request_sli_duration_seconds_sum{component="apiserver",group="",resource="pods",scope="resource",subresource="",verb="POST",version="v1"} 4
apiserver_request_sli_duration_seconds_count{component="apiserver",group="",resource="pods",scope="resource",subresource="",verb="POST",version="v1"} 100
apiserver_request_sli_duration_seconds_bucket{component="apiserver",group="",resource="nodes",scope="cluster",subresource="",verb="LIST",version="v1",le="0.05"} 0
apiserver_request_sli_duration_seconds_bucket{component="apiserver",group="",resource="nodes",scope="cluster",subresource="",verb="LIST",version="v1",le="0.1"} 0
apiserver_request_sli_duration_seconds_bucket{component="apiserver",group="",resource="nodes",scope="cluster",subresource="",verb="LIST",version="v1",le="1"} 5
apiserver_request_sli_duration_seconds_bucket{component="apiserver",group="",resource="nodes",scope="cluster",subresource="",verb="LIST",version="v1",le="+Inf"} 10
apiserver_request_sli_duration_seconds_sum{component="apiserver",group="",resource="nodes",scope="cluster",subresource="",verb="LIST",version="v1"} 40
apiserver_request_sli_duration_seconds_count{component="apiserver",group="",resource="nodes",scope="cluster",subresource="",verb="LIST",version="v1"} 10
apiserver_request_sli_duration_seconds_bucket{component="apiserver",group="",resource="pods",scope="cluster",subresource="",verb="WATCH",version="v1",le="0.05"} 0
apiserver_request_sli_duration_seconds_bucket{component="apiserver",group="",resource="pods",scope="cluster",subresource="",verb="WATCH",version="v1",le="0.1"} 0
apiserver_request_sli_duration_seconds_bucket{component="apiserver",group="",resource="pods",scope="cluster",subresource="",verb="WATCH",version="v1",le="1"} 0
apiserver_request_sli_duration_seconds_bucket{component="apiserver",group="",resource="pods",scope="cluster",subresource="",verb="WATCH",version="v1",le="+Inf"} 3
apiserver_request_sli_duration_seconds_sum{component="apiserver",group="",resource="pods",scope="cluster",subresource="",verb="WATCH",version="v1"} 900
apiserver_request_sli_duration_seconds_count{component="apiserver",group="",resource="pods",scope="cluster",subresource="",verb="WATCH",version="v1"} 3
`

func parse(t *testing.T, text string) Histograms {
	t.Helper()
	h, err := ParseHistograms(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestP99FromTheHistogram(t *testing.T) {
	h := parse(t, recorded)
	post := h[Call{Verb: "POST", Resource: "pods", Scope: "resource"}]
	// Rank 99 of 100 falls at the top of the 50-100 ms bucket (90..99).
	if got := post.Quantile(0.99); got != 100*time.Millisecond {
		t.Errorf("POST pods p99 = %s, want 100ms", got)
	}
	// Rank 9.9 of 10 is in +Inf: Prometheus answers the highest finite bound.
	list := h[Call{Verb: "LIST", Resource: "nodes", Scope: "cluster"}]
	if got := list.Quantile(0.99); got != time.Second {
		t.Errorf("LIST nodes p99 = %s, want 1s", got)
	}
	// Rank 5 of 10: interpolated at the top of the 0.1-1 s bucket.
	if got := list.Quantile(0.5); got != time.Second {
		t.Errorf("LIST nodes p50 = %s, want 1s", got)
	}
}

func TestOnlyTheRunCounts(t *testing.T) {
	before := parse(t, recorded)
	// The same recorded later, with 100 more POSTs all under 50 ms.
	after := parse(t, strings.NewReplacer(`le="0.05"} 90`, `le="0.05"} 190`, `le="0.1"} 99`, `le="0.1"} 199`,
		`le="1"} 100`, `le="1"} 200`, `verb="POST",version="v1",le="+Inf"} 100`, `verb="POST",version="v1",le="+Inf"} 200`,
		`verb="POST",version="v1"} 100`, `verb="POST",version="v1"} 200`).Replace(recorded))
	run := after.Since(before)
	post := run[Call{Verb: "POST", Resource: "pods", Scope: "resource"}]
	if post.Count() != 100 || post.Quantile(0.99) > 50*time.Millisecond {
		t.Errorf("the run's POSTs: %d calls, p99 %s; want 100 under 50ms", post.Count(), post.Quantile(0.99))
	}
	if _, ok := run[Call{Verb: "LIST", Resource: "nodes", Scope: "cluster"}]; ok {
		t.Error("LISTs made before the run are counted in it")
	}
}

func TestSLOGroupsAndVerdicts(t *testing.T) {
	slos := APISLOs(parse(t, recorded))
	byName := map[string]SLO{}
	for _, s := range slos {
		byName[s.Name] = s
	}
	if s := byName["api-mutating"]; s.P99 != 100*time.Millisecond || s.Calls != 100 || !s.Met() {
		t.Errorf("mutating: %+v", s)
	}
	if s := byName["api-list-cluster"]; s.Calls != 10 || s.Worst != "LIST nodes (cluster)" {
		t.Errorf("cluster lists: %+v (the WATCH must not count)", s)
	}
	violated := SLO{Name: "pod-startup", P99: 6 * time.Second, Limit: PodStartupLimit}
	if line := violated.Line(); line != "slo pod-startup p99=6s limit=5s violated" {
		t.Errorf("line %q", line)
	}
}

func TestPercentileIsNearestRank(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 200; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	if got := Percentile(d, 0.99); got != 198*time.Millisecond {
		t.Errorf("p99 of 1..200 ms = %s, want 198ms", got)
	}
	if Percentile(nil, 0.99) != 0 {
		t.Error("p99 of nothing is not 0")
	}
}

func TestCollectionDeletesAreOutsideTheMutatingSLO(t *testing.T) {
	h := Histograms{
		{Verb: "DELETE", Resource: "pods", Scope: "namespace"}: {Bounds: []float64{1, 60, 1e308}, Counts: []uint64{0, 10, 10}},
		{Verb: "DELETE", Resource: "pods", Scope: "resource"}:  {Bounds: []float64{0.1, 1, 1e308}, Counts: []uint64{100, 100, 100}},
	}
	if s := APISLOs(h)[0]; s.Name != "api-mutating" || s.Calls != 100 || !s.Met() {
		t.Errorf("mutating SLO %+v: the namespace's collection delete must not count", s)
	}
}
