package scale

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The API call latency SLOs of Kubernetes' scalability SIG
// (sig-scalability/slos/api_call_latency.md), measured by clusterloader2
// from the API server's own histogram, per resource and verb.
const (
	MutatingLimit       = time.Second      // POST, PUT, PATCH, DELETE
	SingleReadLimit     = time.Second      // GET of one object
	NamespaceListLimit  = 5 * time.Second  // LIST in a namespace
	ClusterListLimit    = 30 * time.Second // LIST across the cluster
	PodStartupLimit     = 5 * time.Second  // stateless pods, no image pull
	apiLatencyHistogram = "apiserver_request_sli_duration_seconds"
)

// Histograms are the API server's request latency histograms, keyed by
// call (verb, resource, subresource, scope).
type Histograms map[Call]Histogram

// Call is one kind of API call as the SLO tells them apart.
type Call struct{ Verb, Resource, Subresource, Scope string }

func (c Call) String() string {
	resource := c.Resource
	if c.Subresource != "" {
		resource += "/" + c.Subresource
	}
	return c.Verb + " " + resource + " (" + c.Scope + ")"
}

// Histogram is cumulative counts by upper bound, as Prometheus keeps them.
type Histogram struct {
	Bounds []float64 // seconds, ascending, the last +Inf
	Counts []uint64  // cumulative
}

// Count is how many calls the histogram holds.
func (h Histogram) Count() uint64 {
	if len(h.Counts) == 0 {
		return 0
	}
	return h.Counts[len(h.Counts)-1]
}

// ParseHistograms reads the API latency histograms from /metrics text.
func ParseHistograms(in io.Reader) (Histograms, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(in)
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	out := Histograms{}
	family := families[apiLatencyHistogram]
	if family == nil {
		return out, nil
	}
	for _, metric := range family.GetMetric() {
		labels := map[string]string{}
		for _, label := range metric.GetLabel() {
			labels[label.GetName()] = label.GetValue()
		}
		call := Call{Verb: labels["verb"], Resource: labels["resource"], Subresource: labels["subresource"], Scope: labels["scope"]}
		out[call] = merge(out[call], toHistogram(metric.GetHistogram()))
	}
	return out, nil
}

func toHistogram(h *dto.Histogram) Histogram {
	var out Histogram
	for _, bucket := range h.GetBucket() {
		out.Bounds = append(out.Bounds, bucket.GetUpperBound())
		out.Counts = append(out.Counts, bucket.GetCumulativeCount())
	}
	out.Bounds = append(out.Bounds, math.Inf(1))
	out.Counts = append(out.Counts, h.GetSampleCount())
	return out
}

// merge adds b to a (the same call reported for several API groups or
// versions); both have the same buckets.
func merge(a, b Histogram) Histogram {
	if len(a.Counts) == 0 {
		return b
	}
	for i := range a.Counts {
		a.Counts[i] += b.Counts[i]
	}
	return a
}

// Since is what happened between an earlier scrape and this one: the
// calls the run made, not the server's start.
func (h Histograms) Since(before Histograms) Histograms {
	out := Histograms{}
	for call, after := range h {
		prior, ok := before[call]
		diff := Histogram{Bounds: after.Bounds, Counts: append([]uint64(nil), after.Counts...)}
		if ok && len(prior.Counts) == len(after.Counts) {
			for i := range diff.Counts {
				diff.Counts[i] -= prior.Counts[i]
			}
		}
		if diff.Count() > 0 {
			out[call] = diff
		}
	}
	return out
}

// Quantile estimates the q-quantile as Prometheus' histogram_quantile
// does: linear within the bucket that holds it; in the +Inf bucket, the
// highest finite bound.
func (h Histogram) Quantile(q float64) time.Duration {
	total := h.Count()
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	lower, below := 0.0, uint64(0)
	for i, bound := range h.Bounds {
		if float64(h.Counts[i]) >= rank {
			if math.IsInf(bound, 1) {
				return seconds(lower)
			}
			inBucket := float64(h.Counts[i] - below)
			if inBucket == 0 {
				return seconds(bound)
			}
			return seconds(lower + (bound-lower)*(rank-float64(below))/inBucket)
		}
		lower, below = bound, h.Counts[i]
	}
	return seconds(lower)
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// SLO is one line of the verdict.
type SLO struct {
	Name  string        `json:"name"`
	P99   time.Duration `json:"p99"`
	Limit time.Duration `json:"limit"`
	Worst string        `json:"worst,omitempty"`
	Calls uint64        `json:"calls"`
}

// Met is whether the p99 is within the limit.
func (s SLO) Met() bool { return s.P99 <= s.Limit }

// Line is the SLO as `make scale` prints it.
func (s SLO) Line() string {
	verdict := "met"
	if !s.Met() {
		verdict = "violated"
	}
	line := fmt.Sprintf("slo %s p99=%s limit=%s %s", s.Name, round(s.P99), s.Limit, verdict)
	if s.Worst != "" {
		line += " worst=" + strings.ReplaceAll(s.Worst, " ", "_")
	}
	return line
}

func round(d time.Duration) time.Duration {
	if d < 10*time.Millisecond {
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(time.Millisecond)
}

// APISLOs groups the calls as the SLO does and reports, per group, the
// worst call's p99. WATCH and CONNECT are long-running: no latency SLO.
func APISLOs(h Histograms) []SLO {
	groups := []SLO{
		{Name: "api-mutating", Limit: MutatingLimit},
		{Name: "api-get", Limit: SingleReadLimit},
		{Name: "api-list-namespace", Limit: NamespaceListLimit},
		{Name: "api-list-cluster", Limit: ClusterListLimit},
	}
	calls := make([]Call, 0, len(h))
	for call := range h {
		calls = append(calls, call)
	}
	sort.Slice(calls, func(i, j int) bool { return calls[i].String() < calls[j].String() })
	for _, call := range calls {
		var group *SLO
		switch {
		case (call.Verb == "POST" || call.Verb == "PUT" || call.Verb == "PATCH" || call.Verb == "DELETE" || call.Verb == "APPLY") && call.Scope == "resource":
			// Single objects only: a DELETE of a namespace's collection
			// (the namespace controller's) is outside the SLO.
			group = &groups[0]
		case call.Verb == "GET" && call.Scope == "resource":
			group = &groups[1]
		case call.Verb == "LIST" && call.Scope == "namespace":
			group = &groups[2]
		case call.Verb == "LIST" && call.Scope == "cluster":
			group = &groups[3]
		default:
			continue
		}
		group.Calls += h[call].Count()
		if p99 := h[call].Quantile(0.99); p99 > group.P99 || group.Worst == "" {
			group.P99, group.Worst = p99, call.String()
		}
	}
	return groups
}

// Percentile is the exact q-quantile of durations (nearest rank).
func Percentile(durations []time.Duration, q float64) time.Duration {
	if len(durations) == 0 {
		return 0
	}
	sorted := append([]time.Duration(nil), durations...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	rank := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(rank, 0)]
}

// CallLatency is one kind of call's count and p99.
type CallLatency struct {
	Call  string        `json:"call"`
	Count uint64        `json:"count"`
	P99   time.Duration `json:"p99"`
}

// Slowest are the n calls with the highest p99 (long-running verbs left out).
func Slowest(h Histograms, n int) []CallLatency {
	var out []CallLatency
	for call, histogram := range h {
		if call.Verb == "WATCH" || call.Verb == "CONNECT" {
			continue
		}
		out = append(out, CallLatency{Call: call.String(), Count: histogram.Count(), P99: histogram.Quantile(0.99)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].P99 > out[j].P99 })
	return out[:min(n, len(out))]
}
