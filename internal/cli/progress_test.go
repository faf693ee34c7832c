package cli

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestImportLinesSayStartEachTenthStallsAndEnd(t *testing.T) {
	clock := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	var out bytes.Buffer
	const size = 100 << 20
	lines := newImportLines(&out, "big.tar", size, now)
	lines.update(0, size)
	// Reads of 1 MiB, 0.1 s apart: 100 updates, 10 s in all.
	for done := int64(1 << 20); done <= size; done += 1 << 20 {
		clock = clock.Add(100 * time.Millisecond)
		lines.update(done, size)
	}
	// A stall (the unpack): a line every 5 s rather than none, here none
	// as the archive is read to its end.
	clock = clock.Add(2 * time.Second)
	lines.end(nil)

	got := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{"Importing big.tar (100.0 MiB)"}
	for percent := 10; percent <= 100; percent += 10 {
		want = append(want, "Importing big.tar: "+strconv.Itoa(percent)+"% (")
	}
	want = append(want, "Imported big.tar: 100.0 MiB in 12s (8.3 MiB/s)")
	if len(got) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(got), len(want), out.String())
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("line %d = %q, want it to begin with %q", i, got[i], want[i])
		}
	}
}

func TestImportLinesGoOnEveryFiveSecondsWhenSlow(t *testing.T) {
	clock := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var out bytes.Buffer
	const size = 100 << 20
	lines := newImportLines(&out, "slow.tar", size, func() time.Time { return clock })
	// 1 MiB every 2 s: a tenth takes 20 s, so the 5 s lines carry it.
	for done := int64(1 << 20); done <= 10<<20; done += 1 << 20 {
		clock = clock.Add(2 * time.Second)
		lines.update(done, size)
	}
	got := strings.Split(strings.TrimSpace(out.String()), "\n")
	// The start, then at 6, 12 and 18 s, then at 20 s for the first tenth.
	if len(got) != 5 || !strings.HasPrefix(got[1], "Importing slow.tar: 3% (3.0 of 100.0 MiB)") || !strings.HasPrefix(got[4], "Importing slow.tar: 10% (") {
		t.Fatalf("lines of a slow import:\n%s", out.String())
	}
}

func TestImportLinesSayNothingMoreOnError(t *testing.T) {
	var out bytes.Buffer
	lines := newImportLines(&out, "bad.tar", 1<<20, time.Now)
	lines.end(errors.New("import failed"))
	if strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("a failed import printed more than its start line (the caller prints the error):\n%s", out.String())
	}
}

func TestImportBarReachesTheEndWhenTheImportDoes(t *testing.T) {
	var out bytes.Buffer
	const size = 50 << 20
	bar := newImportBar(&out, "big.tar", size)
	bar.update(0, size)
	bar.update(size/2, size)
	// containerd may stop short of the file's end; the bar must not.
	bar.update(size-1024, size)
	bar.end(nil)
	screen := out.String()
	last := screen[strings.LastIndex(strings.TrimRight(screen, "\n"), "\r")+1:]
	if !strings.Contains(last, "100%") || !strings.Contains(last, "50 MiB") || !strings.HasSuffix(screen, "\n") {
		t.Fatalf("the bar's last state = %q, want 100%% of 50 MiB and its line ended", last)
	}
}
