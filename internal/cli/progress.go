package cli

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// importProgress shows how far `images import` has read one archive.
// update has the signature node.ImportFile calls back with.
type importProgress interface {
	update(done, total int64)
	// end is called once the import returned, with its error.
	end(err error)
}

// newImportProgress shows a bar on a terminal, and plain lines elsewhere
// (a log file, CI), where a bar's carriage returns would make one long
// line. An empty file gets lines too: the bar refuses a size of 0.
func newImportProgress(out io.Writer, name string, size int64) importProgress {
	if file, ok := out.(*os.File); ok && term.IsTerminal(int(file.Fd())) && size > 0 {
		return newImportBar(out, name, size)
	}
	return newImportLines(out, name, size, time.Now)
}

// importBar is a bar with the bytes read, the rate and the time left.
type importBar struct {
	bar *progressbar.ProgressBar
}

func newImportBar(out io.Writer, name string, size int64) *importBar {
	bar := progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(out),
		progressbar.OptionSetDescription(name),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionFullWidth(),
		progressbar.OptionThrottle(100*time.Millisecond),
		// The import's own log lines (one per image, after the unpack)
		// go below the finished bar, not onto its line.
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(out) }),
		progressbar.OptionSetRenderBlankState(true),
	)
	return &importBar{bar: bar}
}

// The bar's errors are dropped: they only say it could not draw, and the
// import goes on regardless.

func (b *importBar) update(done, total int64) {
	_ = b.bar.Set64(min(done, total))
}

func (b *importBar) end(err error) {
	if err == nil {
		_ = b.bar.Finish()
		return
	}
	if !b.bar.IsFinished() {
		// Leaves the bar where it stopped and ends its line, so the error
		// is printed on a line of its own.
		_ = b.bar.Exit()
	}
}

// importLines writes a line when the import starts, about every tenth of
// the archive or every 5 s (whichever comes first), and when it ends.
type importLines struct {
	out   io.Writer
	name  string
	size  int64
	now   func() time.Time // a test's clock
	began time.Time

	lastTenth  int64
	lastLineAt time.Time
}

// importLineInterval is the longest a slow import goes without a line, so
// it does not look stuck.
const importLineInterval = 5 * time.Second

func newImportLines(out io.Writer, name string, size int64, now func() time.Time) *importLines {
	began := now()
	fmt.Fprintf(out, "Importing %s (%.1f MiB)\n", name, mib(size))
	return &importLines{out: out, name: name, size: size, now: now, began: began, lastLineAt: began}
}

func (l *importLines) update(done, total int64) {
	done = min(done, total)
	percent := int64(100)
	if total > 0 {
		percent = done * 100 / total
	}
	tenth := percent / 10
	now := l.now()
	if tenth <= l.lastTenth && now.Sub(l.lastLineAt) < importLineInterval {
		return
	}
	l.lastTenth, l.lastLineAt = max(tenth, l.lastTenth), now
	fmt.Fprintf(l.out, "Importing %s: %d%% (%.1f of %.1f MiB)\n", l.name, percent, mib(done), mib(total))
}

func (l *importLines) end(err error) {
	if err != nil {
		// The caller prints the error itself.
		return
	}
	took := l.now().Sub(l.began)
	fmt.Fprintf(l.out, "Imported %s: %.1f MiB in %s (%.1f MiB/s)\n", l.name, mib(l.size), took.Round(100*time.Millisecond), mib(l.size)/max(took.Seconds(), 0.001))
}

func mib(bytes int64) float64 { return float64(bytes) / (1 << 20) }
