package node

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/go-logr/logr/funcr"
	"k8s.io/klog/v2"
)

func TestProgressReaderReportsEveryByteRead(t *testing.T) {
	archive := bytes.Repeat([]byte("x"), 1000)
	var reports []int64
	reader := &progressReader{
		// Small reads, as a tar reader's are against a big archive.
		Reader: iotest.HalfReader(bytes.NewReader(archive)),
		total:  int64(len(archive)),
		report: func(done, total int64) {
			if total != int64(len(archive)) {
				t.Fatalf("total = %d, want %d", total, len(archive))
			}
			reports = append(reports, done)
		},
	}
	read, err := io.ReadAll(reader)
	if err != nil || !bytes.Equal(read, archive) {
		t.Fatalf("read %d bytes (err %v), want the %d of the archive unchanged", len(read), err, len(archive))
	}
	for i := 1; i < len(reports); i++ {
		if reports[i] <= reports[i-1] {
			t.Fatalf("reports go backwards or repeat: %v", reports)
		}
	}
	if len(reports) < 2 || reports[len(reports)-1] != int64(len(archive)) {
		t.Fatalf("reports %v do not end at the archive's size %d", reports, len(archive))
	}
}

func TestLogProgressLogsABigArchiveEachTenthOnce(t *testing.T) {
	var lines []string
	klog.SetLogger(funcr.New(func(_, args string) { lines = append(lines, args) }, funcr.Options{}))
	t.Cleanup(klog.ClearLogger)

	const size = 200 << 20
	progress := logProgress("/data/images/big.tar")
	// 32 KiB reads, as containerd's tar reader makes.
	for done := int64(0); done <= size; done += 32 << 10 {
		progress(done, size)
	}
	if len(lines) != 10 {
		t.Fatalf("%d lines for one archive, want 10 (0%% to 90%%; the images' own lines say the end):\n%s", len(lines), strings.Join(lines, "\n"))
	}
	for i, line := range lines {
		want := fmt.Sprintf(`"done"="%d%%"`, i*10)
		if !strings.Contains(line, want) || !strings.Contains(line, `"path"="/data/images/big.tar"`) || !strings.Contains(line, `"sizeMiB"=200`) {
			t.Errorf("line %d = %s, want %s, the path and the size", i, line, want)
		}
	}
}
