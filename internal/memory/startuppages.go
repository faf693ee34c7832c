package memory

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

// keepStartupPagesEnv turns the release off (for A/B measurements).
const keepStartupPagesEnv = "MONOKUBE_KEEP_STARTUP_PAGES"

// Why this exists: monokube is one ~190 MB program, and Go runs every
// linked package's init at start. Those inits are spread over the whole
// code and read-only data, and the kernel maps file pages around each fault
// (fault-around, 64 KiB) out of the large folios readahead put in the page
// cache. A worker that has run the inits of the control plane it never uses
// kept ~120 MiB of the program resident, of which little is used again.
//
// Once ready, the program's read-only mappings are marked MADV_RANDOM (so a
// later fault reads only its own page, not a readahead window), unmapped,
// and the file's pages no process maps are dropped from the page cache.
// What the process still runs faults back in, 4 KiB at a time.
func releaseStartupPages() {
	if os.Getenv(keepStartupPagesEnv) != "" {
		return
	}
	released, err := dropProgramMappings()
	if err != nil {
		klog.ErrorS(err, "Could not release start-up pages of the program; continuing")
		return
	}
	klog.InfoS("Released start-up pages of the program", "residentMiB", released>>20)
}

// dropProgramMappings returns how many bytes were resident in the mappings
// it dropped.
func dropProgramMappings() (int64, error) {
	ranges, resident, err := programReadOnlyMappings()
	if err != nil {
		return 0, err
	}
	for _, r := range ranges {
		for _, advice := range []int{unix.MADV_RANDOM, unix.MADV_DONTNEED} {
			if _, _, errno := unix.Syscall(unix.SYS_MADVISE, r.start, r.end-r.start, uintptr(advice)); errno != 0 {
				return 0, fmt.Errorf("madvise %#x-%#x (%d): %w", r.start, r.end, advice, errno)
			}
		}
	}
	// /proc/self/exe opens the program even if its file was replaced.
	exe, err := os.Open("/proc/self/exe")
	if err != nil {
		return 0, fmt.Errorf("open the program file: %w", err)
	}
	defer exe.Close()
	if err := unix.Fadvise(int(exe.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return 0, fmt.Errorf("drop the program's unmapped pages from the page cache: %w", err)
	}
	return resident, nil
}

type addressRange struct{ start, end uintptr }

// programReadOnlyMappings finds the program's code and read-only data in
// /proc/self/smaps, with the bytes resident in them. Writable data is left
// alone: its written pages are anonymous copies.
func programReadOnlyMappings() ([]addressRange, int64, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return nil, 0, fmt.Errorf("find the program file: %w", err)
	}
	exe = strings.TrimSuffix(exe, " (deleted)")
	smaps, err := os.Open("/proc/self/smaps")
	if err != nil {
		return nil, 0, fmt.Errorf("read the memory map: %w", err)
	}
	defer smaps.Close()
	var ranges []addressRange
	var resident int64
	inProgram := false
	scanner := bufio.NewScanner(smaps)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) == 0 {
			continue
		}
		if r, ok := parseMappingHeader(fields); ok {
			path := strings.TrimSuffix(strings.Join(fields[5:], " "), " (deleted)")
			inProgram = path == exe && !strings.Contains(fields[1], "w")
			if inProgram {
				ranges = append(ranges, r)
			}
			continue
		}
		if inProgram && fields[0] == "Rss:" && len(fields) >= 2 {
			kib, _ := strconv.ParseInt(fields[1], 10, 64)
			resident += kib << 10
		}
	}
	if err := scanner.Err(); err != nil {
		return nil, 0, fmt.Errorf("read the memory map: %w", err)
	}
	if len(ranges) == 0 {
		return nil, 0, fmt.Errorf("no mapping of %s in the memory map", exe)
	}
	return ranges, resident, nil
}

// parseMappingHeader reads "start-end perms offset dev inode path", the
// line that opens each mapping in smaps; only mappings of a file qualify.
func parseMappingHeader(fields []string) (addressRange, bool) {
	if len(fields) < 6 {
		return addressRange{}, false
	}
	start, end, ok := strings.Cut(fields[0], "-")
	if !ok {
		return addressRange{}, false
	}
	s, err1 := strconv.ParseUint(start, 16, 64)
	e, err2 := strconv.ParseUint(end, 16, 64)
	if err1 != nil || err2 != nil {
		return addressRange{}, false
	}
	return addressRange{start: uintptr(s), end: uintptr(e)}, true
}
