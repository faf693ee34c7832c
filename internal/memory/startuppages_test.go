package memory

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

func TestDropProgramMappingsReleasesResidentCode(t *testing.T) {
	_, before, err := programReadOnlyMappings()
	if err != nil {
		t.Fatal(err)
	}
	released, err := dropProgramMappings()
	if err != nil {
		t.Fatal(err)
	}
	_, after, err := programReadOnlyMappings()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("program read-only pages resident: %d KiB before, %d KiB after (released %d KiB)", before>>10, after>>10, released>>10)
	if released <= 0 || after >= before {
		t.Errorf("resident %d KiB before, %d KiB after: nothing released", before>>10, after>>10)
	}
	// Later faults must read single pages, or the release is undone by
	// readahead: every program mapping carries the random-read hint.
	for _, flags := range programVmFlags(t) {
		if !strings.Contains(" "+flags+" ", " rr ") {
			t.Errorf("program mapping without the random-read hint: VmFlags %q", flags)
		}
	}
}

func TestParseMappingHeader(t *testing.T) {
	for line, want := range map[string]bool{
		"00400000-0585c000 r-xp 00000000 fe:00 1234 /usr/bin/monokube": true,
		"7f0000000000-7f0000021000 rw-p 00000000 00:00 0":              false,
		"VmFlags: rd ex mr mw me":                                      false,
		"zz-00400000 r-xp 00000000 fe:00 1234 /x":                      false,
	} {
		r, ok := parseMappingHeader(strings.Fields(line))
		if ok != want {
			t.Errorf("%q: ok %v, want %v", line, ok, want)
		}
		if ok && r.end <= r.start {
			t.Errorf("%q: range %#x-%#x", line, r.start, r.end)
		}
	}
}

// programVmFlags returns the VmFlags line of each read-only mapping of the
// test program.
func programVmFlags(t *testing.T) []string {
	t.Helper()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	smaps, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer smaps.Close()
	var flags []string
	inProgram := false
	scanner := bufio.NewScanner(smaps)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if _, ok := parseMappingHeader(fields); ok {
			inProgram = strings.Join(fields[5:], " ") == exe && !strings.Contains(fields[1], "w")
			continue
		}
		if inProgram && len(fields) > 0 && fields[0] == "VmFlags:" {
			flags = append(flags, strings.Join(fields[1:], " "))
		}
	}
	if len(flags) == 0 {
		t.Fatal("no program mapping found")
	}
	return flags
}
