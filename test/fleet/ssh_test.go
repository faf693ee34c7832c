// Package fleettest tests `monokube cluster`'s transports against real
// servers: the SSH transport against Debian's OpenSSH sshd on a machine of
// its own on a test network. It needs root (namespaces), not monokube.
package fleettest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/monokube/monokube/internal/fleet"
	"github.com/monokube/monokube/test/harness"
)

// TestMain fails the package when its tests leave anything on the machine.
func TestMain(m *testing.M) { harness.Main(m) }

// TestSSHTransportDrivesOpenSSH runs the SSH transport against one real
// sshd: logging in with a key file, the agent and through a bastion; host
// key checks; commands, their failures and cancellation; uploads and
// downloads.
func TestSSHTransportDrivesOpenSSH(t *testing.T) {
	network := harness.NewNetwork(t)
	host := startSSHHost(t, network)

	dial := func(t *testing.T, o fleet.SSHOptions) fleet.Machine {
		t.Helper()
		machine, err := fleet.DialSSH(context.Background(), o)
		if err != nil {
			t.Fatalf("DialSSH: %v", err)
		}
		t.Cleanup(func() {
			if err := machine.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		})
		return machine
	}
	machine := dial(t, host.options())

	t.Run("RunsCommandsAsRoot", func(t *testing.T) {
		if got, want := machine.String(), "root@"+host.IP+":22"; got != want {
			t.Errorf("String() = %q, want %q", got, want)
		}
		out, err := machine.Run(context.Background(), "echo hi; id -u")
		if err != nil {
			t.Fatal(err)
		}
		if out != "hi\n0\n" {
			t.Errorf("Run = %q, want %q", out, "hi\n0\n")
		}
	})

	t.Run("FailureCarriesExitStatusAndStderr", func(t *testing.T) {
		out, err := machine.Run(context.Background(), "echo partial; for i in $(seq 1 30); do echo line$i >&2; done; exit 3")
		var commandErr *fleet.SSHCommandError
		if !errors.As(err, &commandErr) {
			t.Fatalf("error %v (%T), want an *SSHCommandError", err, err)
		}
		if commandErr.ExitStatus != 3 {
			t.Errorf("exit status %d, want 3", commandErr.ExitStatus)
		}
		t.Logf("failed: %v", err)
		for _, want := range []string{"status 3", "line30", host.IP} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
		}
		// Only the last lines of stderr.
		if strings.Contains(err.Error(), "line20\n") {
			t.Errorf("error carries all of stderr: %q", err)
		}
		if out != "partial\n" {
			t.Errorf("stdout of the failed command = %q", out)
		}
	})

	t.Run("UploadThenDownloadGivesTheSameBytes", func(t *testing.T) {
		content := make([]byte, 5<<20)
		if _, err := rand.Read(content); err != nil {
			t.Fatal(err)
		}
		// A directory that does not exist yet, and a name a shell would
		// split, quote or expand.
		target := filepath.Join(host.Dir, "new dir", "it's $(false).bin")
		start := time.Now()
		if err := machine.Upload(context.Background(), bytes.NewReader(content), target, 0o640); err != nil {
			t.Fatal(err)
		}
		t.Logf("upload of 5 MiB: %s", time.Since(start).Round(time.Millisecond))
		info, err := os.Stat(target)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o640 {
			t.Errorf("mode %v, want 0640", info.Mode().Perm())
		}
		var downloaded bytes.Buffer
		start = time.Now()
		if err := machine.Download(context.Background(), target, &downloaded); err != nil {
			t.Fatal(err)
		}
		t.Logf("download of 5 MiB: %s", time.Since(start).Round(time.Millisecond))
		if !bytes.Equal(downloaded.Bytes(), content) {
			t.Errorf("downloaded %d bytes that differ from the %d uploaded", downloaded.Len(), len(content))
		}
		// Again over the same file, with another mode: replaced, not appended.
		if err := machine.Upload(context.Background(), strings.NewReader("small\n"), target, 0o600); err != nil {
			t.Fatal(err)
		}
		if raw, err := os.ReadFile(target); err != nil || string(raw) != "small\n" {
			t.Errorf("after a second upload: %q, %v", raw, err)
		}
		if info, err := os.Stat(target); err == nil && info.Mode().Perm() != 0o600 {
			t.Errorf("mode after a second upload %v, want 0600", info.Mode().Perm())
		}
		assertOnlyFiles(t, filepath.Dir(target), filepath.Base(target))

		err = machine.Download(context.Background(), filepath.Join(host.Dir, "missing"), io.Discard)
		if err == nil || !strings.Contains(err.Error(), "No such file") {
			t.Errorf("download of a missing file: %v, want cat's complaint", err)
		}
	})

	t.Run("CancelledUploadInstallsNothing", func(t *testing.T) {
		target := filepath.Join(host.Dir, "cancelled", "file")
		ctx, cancel := context.WithCancel(context.Background())
		// 1 MiB, then a reader that waits; the upload is cancelled then.
		content := io.MultiReader(bytes.NewReader(make([]byte, 1<<20)), &blockingReader{ctx: ctx, started: cancel})
		err := machine.Upload(ctx, content, target, 0o644)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled upload: %v, want context.Canceled", err)
		}
		if _, err := os.Stat(target); !os.IsNotExist(err) {
			t.Errorf("cancelled upload left %s: %v", target, err)
		}
		// The temporary file is gone too (once the remote cat ended).
		harness.Poll(t, 10*time.Second, "temporary file removed", func(context.Context) (bool, error) {
			entries, _ := os.ReadDir(filepath.Dir(target))
			return len(entries) == 0, nil
		})
	})

	t.Run("CancelReturnsPromptly", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := machine.Run(ctx, "sleep 37")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Run after its deadline: %v, want context.DeadlineExceeded", err)
		}
		// The channel is closed and the command given a moment to end.
		// sshd refuses to signal a root login's command, so this sleep runs
		// on (the host's teardown kills it).
		if elapsed := time.Since(start); elapsed > 5*time.Second {
			t.Errorf("Run returned %s after its deadline of 500ms", elapsed)
		}
		// The connection still serves the next command.
		if out, err := machine.Run(context.Background(), "echo still"); err != nil || out != "still\n" {
			t.Errorf("Run after a cancelled one: %q, %v", out, err)
		}
	})

	t.Run("UnknownHostKeyIsRefused", func(t *testing.T) {
		o := host.options()
		o.KnownHostsFile = filepath.Join(t.TempDir(), "known_hosts") // does not exist
		_, err := fleet.DialSSH(context.Background(), o)
		t.Logf("refused: %v", err)
		for _, want := range []string{host.IP + ":22", "unknown", "ssh-keyscan -p 22 " + host.IP + " >> " + o.KnownHostsFile, "--insecure-host-key"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("unknown host key: error %v does not say %q", err, want)
			}
		}
	})

	t.Run("ChangedHostKeyIsRefused", func(t *testing.T) {
		o := host.options()
		o.KnownHostsFile = filepath.Join(t.TempDir(), "known_hosts")
		other, err := os.ReadFile(host.KnownHosts)
		if err != nil {
			t.Fatal(err)
		}
		// The same host, another ed25519 key: the one of the client.
		pub, err := os.ReadFile(host.ClientKey + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		fields := strings.Fields(string(pub))
		writeFile(t, o.KnownHostsFile, strings.Fields(string(other))[0]+" "+fields[0]+" "+fields[1]+"\n", 0o600)
		_, err = fleet.DialSSH(context.Background(), o)
		t.Logf("refused: %v", err)
		for _, want := range []string{host.IP + ":22 changed", "ssh-keygen -f " + o.KnownHostsFile + " -R " + host.IP, "--insecure-host-key"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("changed host key: error %v does not say %q", err, want)
			}
		}
	})

	t.Run("InsecureHostKeyAcceptsAnyKey", func(t *testing.T) {
		o := host.options()
		o.KnownHostsFile = filepath.Join(t.TempDir(), "known_hosts")
		o.InsecureHostKey = true
		if out, err := dial(t, o).Run(context.Background(), "echo ok"); err != nil || out != "ok\n" {
			t.Errorf("Run with any host key: %q, %v", out, err)
		}
	})

	t.Run("AgentKeysLogIn", func(t *testing.T) {
		o := host.options()
		o.KeyFile = ""
		t.Setenv("SSH_AUTH_SOCK", serveAgent(t, host.ClientKey))
		if out, err := dial(t, o).Run(context.Background(), "id -u"); err != nil || out != "0\n" {
			t.Errorf("Run with the agent's key: %q, %v", out, err)
		}
		t.Setenv("SSH_AUTH_SOCK", "")
		_, err := fleet.DialSSH(context.Background(), o)
		if err == nil || !strings.Contains(err.Error(), "SSH_AUTH_SOCK") {
			t.Errorf("no key file and no agent: %v, want an error naming SSH_AUTH_SOCK", err)
		}
	})

	t.Run("BastionCarriesTheConnection", func(t *testing.T) {
		// The host is its own bastion: the target connection is made by
		// sshd inside the host's namespace.
		o := host.options()
		bastion := host.options()
		o.Bastion = &bastion
		before := len(host.processes())
		machine := dial(t, o)
		if out, err := machine.Run(context.Background(), "echo through; id -u"); err != nil || out != "through\n0\n" {
			t.Errorf("Run through the bastion: %q, %v", out, err)
		}
		if err := machine.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		// Both connections end: sshd's per-connection processes go.
		harness.Poll(t, 10*time.Second, "both connections closed", func(context.Context) (bool, error) {
			return len(host.processes()) <= before, nil
		})
	})

	t.Run("UserWithoutSudoIsToldToGetIt", func(t *testing.T) {
		// Debian's sudo is not part of the test bed (it needs a setuid
		// binary, sudoers and PAM): this user has none, and the error says so.
		o := host.options()
		o.User = host.User
		machine := dial(t, o)
		_, err := machine.Run(context.Background(), "id -u")
		t.Logf("refused: %v", err)
		if err == nil || !strings.Contains(err.Error(), "sudo") || !strings.Contains(err.Error(), "log in as root") {
			t.Errorf("Run as %s without sudo: %v, want an error about sudo", host.User, err)
		}
	})
}

// blockingReader calls started on its first Read, then blocks until ctx ends.
type blockingReader struct {
	ctx     context.Context
	started func()
}

func (b *blockingReader) Read([]byte) (int, error) {
	b.started()
	<-b.ctx.Done()
	return 0, b.ctx.Err()
}

// serveAgent serves an SSH agent holding the private key in keyFile on a
// socket and returns the socket's path; it stops when the test ends.
func serveAgent(t *testing.T, keyFile string) string {
	t.Helper()
	raw, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.ParseRawPrivateKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: key}); err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(t.TempDir(), "agent.sock")
	listener, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			_ = agent.ServeAgent(keyring, conn)
			conn.Close()
		}
	}()
	t.Cleanup(func() {
		listener.Close()
		<-done
	})
	return socket
}

// assertOnlyFiles fails the test unless dir holds exactly names.
func assertOnlyFiles(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, entry := range entries {
		got = append(got, entry.Name())
	}
	if strings.Join(got, "\n") != strings.Join(names, "\n") {
		t.Errorf("%s holds %q, want %q", dir, got, names)
	}
}
