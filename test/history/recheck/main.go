// Command recheck checks a history saved by the faults suite
// (MONOKUBE_FAULTS_HISTORY=dir) again, to look closer at a violation or to
// try a change to the checker on a real run without running it again.
//
//	go run ./test/history/recheck build/TestFaults_etcd.json
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/monokube/monokube/test/history"
)

func main() {
	timeout := flag.Duration("timeout", 5*time.Minute, "porcupine's limit per key")
	html := flag.String("html", "", "write porcupine's visualization of any violation here")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: recheck [flags] HISTORY.json\n\nexample: go run ./test/history/recheck -html /tmp/h.html build/TestFaults_etcd.json\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	raw, err := os.ReadFile(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "recheck:", err)
		os.Exit(1)
	}
	var ops []history.Op
	if err := json.Unmarshal(raw, &ops); err != nil {
		fmt.Fprintf(os.Stderr, "recheck: %s is not a saved history: %v\n", flag.Arg(0), err)
		os.Exit(1)
	}
	began := time.Now()
	report := history.Check(ops, workloadKeys(ops), *timeout, *html)
	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	fmt.Printf("%s\nchecked in %s, %d MiB allocated from the system\n", report, time.Since(began).Round(time.Millisecond), mem.Sys>>20)
	if !report.OK() {
		os.Exit(1)
	}
}

// workloadKeys are the keys the history's lists could have shown: every key
// a single-key op named (the suite lists only its own keys).
func workloadKeys(ops []history.Op) []string {
	var keys []string
	for _, op := range ops {
		if op.Kind != history.List && !slices.Contains(keys, op.Key) {
			keys = append(keys, op.Key)
		}
	}
	slices.Sort(keys)
	return keys
}
