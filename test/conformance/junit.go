package conformance

import (
	"encoding/xml"
	"fmt"
	"os"
	"strings"
)

// result is one test of a run, as ginkgo's JUnit report gives it.
type result struct {
	Name    string
	State   string // passed, failed, skipped
	Seconds float64
	Reason  string // first line of the failure message
}

type junitSuites struct {
	Suites []struct {
		Cases []struct {
			Name    string  `xml:"name,attr"`
			Status  string  `xml:"status,attr"`
			Time    float64 `xml:"time,attr"`
			Failure *struct {
				Message string `xml:"message,attr"`
				Body    string `xml:",chardata"`
			} `xml:"failure"`
			Skipped *struct{} `xml:"skipped"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// readJUnit returns the [Conformance] tests of a report; ginkgo lists the
// suite's other tests too, as skipped by the focus.
func readJUnit(path string) ([]result, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("junit report: %w", err)
	}
	var suites junitSuites
	if err := xml.Unmarshal(data, &suites); err != nil {
		return nil, fmt.Errorf("junit report %s: %w", path, err)
	}
	var results []result
	for _, suite := range suites.Suites {
		for _, c := range suite.Cases {
			if !strings.Contains(c.Name, "[Conformance]") {
				continue
			}
			r := result{Name: strings.TrimPrefix(c.Name, "[It] "), State: c.Status, Seconds: c.Time}
			switch {
			case c.Failure != nil:
				r.State = "failed"
				r.Reason = firstLine(c.Failure.Message)
				if r.Reason == "" {
					r.Reason = firstLine(c.Failure.Body)
				}
			case c.Skipped != nil || c.Status == "pending":
				r.State = "skipped"
			case r.State == "":
				r.State = "passed"
			}
			results = append(results, r)
		}
	}
	return results, nil
}

func firstLine(s string) string {
	for _, line := range strings.Split(s, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			if len(line) > 240 {
				line = line[:240] + "…"
			}
			return line
		}
	}
	return ""
}
