package e2e

import (
	"archive/tar"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/monokube/monokube/internal/images"
)

// TestImagesImportShowsABarOnATerminal imports a 120 MiB archive into a
// running node from a terminal (a tmux pane) and checks what a user sees
// there: a bar that ends at 100% with the bytes and the rate, not the plain
// lines written when stderr is no terminal. The image is then in the node's
// containerd.
func TestImagesImportShowsABarOnATerminal(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed: it gives the import a terminal")
	}
	node := startNode(t, "")
	const reference = "monokube.io/test-big:1"
	archive := filepath.Join(t.TempDir(), "big.tar")
	writeRandomArchive(t, reference, archive, 120<<20)

	pane := newTmuxPane(t)
	// Run in the node's namespaces (as harness.Node.InNode does) so the
	// import reaches this node's containerd; the exit status is printed
	// in the pane, and the sleep keeps the pane open to be read.
	pane.run(shellJoin("nsenter", "--net=/run/netns/"+node.NetNS, "--mount="+node.MountNS, "--uts="+node.UTSNS, "--",
		node.Bin, "--data-dir", node.DataDir, "images", "import", archive) + `; echo "import exited $?"; sleep 600`)

	var screen string
	midway := map[string]bool{}
	percent := regexp.MustCompile(`big\.tar\s+(\d+)%`)
	ok := false
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		screen = pane.capture()
		// Seen on the way, for the log: a fast disk may go from 0 to 100%
		// between two looks, so it is not required.
		for _, match := range percent.FindAllStringSubmatch(screen, -1) {
			if match[1] != "100" {
				midway[match[1]+"%"] = true
			}
		}
		if ok = strings.Contains(screen, "import exited"); ok {
			break
		}
	}
	if !ok {
		t.Fatalf("the import did not end within 3 minutes; the pane shows:\n%s", screen)
	}
	t.Logf("percentages seen before the end: %v; the pane at the end:\n%s", midway, screen)
	if !strings.Contains(screen, "import exited 0") {
		t.Fatalf("images import failed; the pane shows:\n%s", screen)
	}
	// The archive is 120 MiB and some KiB of tar headers and the config.
	finished := regexp.MustCompile(`big\.tar\s+100% .*\(120/120 MiB, [0-9.]+ [KMG]?i?B/s\)`)
	if !finished.MatchString(screen) {
		t.Errorf("the pane shows no bar at 100%% of 120 MiB with a rate:\n%s", screen)
	}
	if strings.Contains(screen, "Importing big.tar") {
		t.Errorf("the pane shows the plain lines meant for no terminal:\n%s", screen)
	}
	out, err := node.InNode(node.Bin, "--data-dir", node.DataDir, "ctr", "images", "ls", "-q")
	if err != nil || !strings.Contains(out, reference) {
		t.Errorf("ctr images ls (err %v) lacks %s after the import:\n%s", err, reference, out)
	}
}

// writeRandomArchive writes an image of one layer, a file of size random
// bytes: incompressible, as real images' programs mostly are, so the import
// has the whole size to hash, store and unpack. The layer is streamed to a
// file, not built in memory from a directory.
func writeRandomArchive(t *testing.T, reference, path string, size int64) {
	t.Helper()
	layer := filepath.Join(t.TempDir(), "random-layer.tar")
	file, err := os.Create(layer)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	tw := tar.NewWriter(file)
	if err := tw.WriteHeader(&tar.Header{Name: "random.bin", Mode: 0o644, Size: size, Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(tw, rand.Reader, size); err != nil {
		t.Fatalf("write the random layer: %v", err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := file.Close(); err != nil {
		t.Fatal(err)
	}
	if err := images.WriteArchive(path, images.Spec{Reference: reference, BaseLayers: []string{layer}}); err != nil {
		t.Fatal(err)
	}
}

// tmuxPane is a detached 200x50 tmux session: a terminal for a command
// whose screen the test reads. Its tmux server is on a socket of its own in
// a temp dir, so the test neither joins a user's server (and gets its
// environment) nor can end anything of theirs; killing the session, its
// last, ends it, and the temp dir goes with the socket tmux leaves.
type tmuxPane struct {
	t       *testing.T
	socket  string
	session string
}

func newTmuxPane(t *testing.T) *tmuxPane {
	t.Helper()
	return &tmuxPane{t: t, socket: filepath.Join(t.TempDir(), "tmux"), session: fmt.Sprintf("mk-import-%d", os.Getpid())}
}

// run starts the session with command, and ends it (and so what still runs
// in it) when the test ends.
func (p *tmuxPane) run(command string) {
	p.t.Helper()
	if out, err := p.tmux("new-session", "-d", "-s", p.session, "-x", "200", "-y", "50", command); err != nil {
		p.t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	p.t.Cleanup(func() {
		if out, err := p.tmux("kill-session", "-t", p.session); err != nil {
			p.t.Errorf("tmux kill-session -t %s: %v\n%s", p.session, err, out)
		}
	})
}

// capture is what the pane shows now, wrapped lines joined.
func (p *tmuxPane) capture() string {
	out, err := p.tmux("capture-pane", "-p", "-J", "-t", p.session)
	if err != nil {
		return fmt.Sprintf("(capture-pane: %v: %s)", err, out)
	}
	return out
}

func (p *tmuxPane) tmux(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "tmux", append([]string{"-S", p.socket}, args...)...).CombinedOutput()
	return string(out), err
}

// shellJoin quotes args for sh, for the command line tmux runs.
func shellJoin(args ...string) string {
	quoted := make([]string, len(args))
	for i, arg := range args {
		quoted[i] = "'" + strings.ReplaceAll(arg, "'", `'\''`) + "'"
	}
	return strings.Join(quoted, " ")
}
