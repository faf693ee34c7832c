package conformance

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"
)

// shapeRun is the outcome of every pass on one cluster shape.
type shapeRun struct {
	nodes       int
	kubeVersion string // as the API server reports it
	started     time.Time
	wall        time.Duration
	results     []result
}

// merged has one result per test: a test the parallel pass skipped (for
// being serial) counts by what the serial pass did with it, and so on.
func (r shapeRun) merged() []result {
	byName := map[string]result{}
	for _, res := range r.results {
		if old, ok := byName[res.Name]; ok && res.State == "skipped" && old.State != "skipped" {
			continue
		}
		byName[res.Name] = res
	}
	out := make([]result, 0, len(byName))
	for _, res := range byName {
		out = append(out, res)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

const summaryHeader = `# Conformance

Upstream's ` + "`[Conformance]`" + ` tests of the Kubernetes version monokube embeds, run by
` + "`make conformance`" + ` (test/conformance) on this repository's own clusters: one
` + "`server --enable-worker`" + ` node, and a server with two workers, each node in network
namespaces of its own with no route out of the machine. Every image the suite runs is
built locally (hack/e2eimages) and imported into the nodes. This file is written by the
run; one section per cluster shape.
`

// writeSummary replaces the section of run's shape in path, keeping the
// other shapes' sections from earlier runs.
func writeSummary(path string, run shapeRun) error {
	old, _ := os.ReadFile(path)
	sections := map[int]string{}
	for _, match := range sectionPattern.FindAllStringSubmatch(string(old), -1) {
		var nodes int
		fmt.Sscan(match[1], &nodes)
		sections[nodes] = match[0]
	}
	sections[run.nodes] = section(run)
	shapes := make([]int, 0, len(sections))
	for nodes := range sections {
		shapes = append(shapes, nodes)
	}
	sort.Ints(shapes)
	var b strings.Builder
	b.WriteString(summaryHeader)
	for _, nodes := range shapes {
		b.WriteString("\n" + strings.TrimSpace(sections[nodes]) + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("conformance summary: %w", err)
	}
	return nil
}

var sectionPattern = regexp.MustCompile(`(?s)<!-- shape (\d+) -->.*?<!-- /shape -->`)

func section(run shapeRun) string {
	results := run.merged()
	c := count(results)
	var b strings.Builder
	fmt.Fprintf(&b, "<!-- shape %d -->\n## %s\n\n", run.nodes, shapeName(run.nodes))
	fmt.Fprintf(&b, "%s: %d passed, %d failed, %d skipped (of %d) — Kubernetes %s, %s, wall time %s\n",
		shapeName(run.nodes), c.passed, c.failed, c.skipped, len(results), run.kubeVersion,
		run.started.UTC().Format("2006-01-02"), run.wall.Round(time.Minute))
	if c.failed > 0 {
		b.WriteString("\nFailed:\n\n")
		for _, r := range results {
			if r.State == "failed" {
				fmt.Fprintf(&b, "- `%s` — %s%s\n", r.Name, strings.ReplaceAll(r.Reason, "\n", " "), knownCause(r, run.nodes))
			}
		}
	}
	b.WriteString("<!-- /shape -->\n")
	return b.String()
}

// knownCause explains failures whose cause is the cluster's shape or this
// machine rather than monokube; each names what is missing.
func knownCause(r result, nodes int) string {
	needsTwo := strings.Contains(r.Name, "should have at least two untainted nodes") ||
		strings.Contains(r.Reason, "needs a cluster with at least 2 nodes")
	if nodes == 1 && needsTwo {
		return " (**shape, not monokube**: the test requires two schedulable nodes; see the 3-node run)"
	}
	return ""
}

func shapeName(nodes int) string {
	if nodes == 1 {
		return "1 node"
	}
	return fmt.Sprintf("%d nodes", nodes)
}
