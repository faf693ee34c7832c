package conformance

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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

// runFacts is what a run records next to its JUnit reports (run.json), so
// the summary can be written again from the reports alone.
type runFacts struct {
	Nodes       int           `json:"nodes"`
	KubeVersion string        `json:"kubeVersion"`
	Started     time.Time     `json:"started"`
	Wall        time.Duration `json:"wallNanoseconds"`
}

func (r shapeRun) save(dir string) error {
	data, err := json.MarshalIndent(runFacts{r.nodes, r.kubeVersion, r.started, r.wall}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "run.json"), data, 0o644)
}

// loadRun reads a shape's run.json and every pass's JUnit report under dir.
func loadRun(dir string) (shapeRun, error) {
	data, err := os.ReadFile(filepath.Join(dir, "run.json"))
	if err != nil {
		return shapeRun{}, fmt.Errorf("conformance run: %w", err)
	}
	var facts runFacts
	if err := json.Unmarshal(data, &facts); err != nil {
		return shapeRun{}, fmt.Errorf("conformance run %s: %w", dir, err)
	}
	run := shapeRun{nodes: facts.Nodes, kubeVersion: facts.KubeVersion, started: facts.Started, wall: facts.Wall}
	reports, _ := filepath.Glob(filepath.Join(dir, "*", "junit_01.xml"))
	if len(reports) == 0 {
		return shapeRun{}, fmt.Errorf("conformance run %s: no JUnit reports", dir)
	}
	for _, report := range reports {
		results, err := readJUnit(report)
		if err != nil {
			return shapeRun{}, err
		}
		run.results = append(run.results, results...)
	}
	return run, nil
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
run (or from its saved reports by ` + "`make conformance-summary`" + `); one section per cluster
shape. Wall time runs from the cluster's start to the end of the serial pass, on the
2-core development VM.
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
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("conformance summary: %w", err)
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
		run.started.UTC().Format("2006-01-02"), run.wall.Round(time.Second))
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
