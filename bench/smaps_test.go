package bench

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// logMemoryMap logs where a process's resident memory is, by mapping: the
// program's code, read-only data and writable data, and anonymous memory
// (heap and stacks). It is what tells "the heap grew" from "more of the
// program was paged in" when an RSS number moves.
func logMemoryMap(t *testing.T, pid int) {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		t.Logf("memory map: %v", err)
		return
	}
	defer f.Close()
	kib := map[string]int{}
	current := ""
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) == 0 {
			continue
		}
		if strings.Contains(fields[0], "-") && len(fields) >= 5 {
			current = mappingKind(fields)
			continue
		}
		if fields[0] == "Rss:" && len(fields) >= 2 {
			n, _ := strconv.Atoi(fields[1])
			kib[current] += n
		}
	}
	kinds := make([]string, 0, len(kib))
	for kind := range kib {
		kinds = append(kinds, kind)
	}
	sort.Strings(kinds)
	var parts []string
	for _, kind := range kinds {
		parts = append(parts, fmt.Sprintf("%s %.1f", kind, float64(kib[kind])/1024))
	}
	t.Logf("resident MiB by mapping: %s", strings.Join(parts, ", "))
}

// mappingKind names a smaps header line: "program code", "program data"
// and so on for the executable's own mappings, the path's base otherwise.
func mappingKind(header []string) string {
	perms := header[1]
	if len(header) < 6 {
		return "anonymous"
	}
	path := header[5]
	switch {
	case strings.HasPrefix(path, "["):
		return path
	case strings.HasSuffix(path, "/monokube"):
		switch {
		case strings.Contains(perms, "x"):
			return "program code"
		case strings.Contains(perms, "w"):
			return "program data"
		default:
			return "program read-only"
		}
	}
	return path
}
