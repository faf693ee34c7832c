package fleet

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// SSHOptions say how to reach a host over SSH; zero values take defaults.
type SSHOptions struct {
	Address string
	// Port defaults to 22.
	Port int
	// User defaults to "root". Any other user runs every command through
	// `sudo -n`, so it needs passwordless sudo.
	User string
	// KeyFile is the private key's path ("~/" is the home directory);
	// empty: the keys of the SSH agent at $SSH_AUTH_SOCK.
	KeyFile string
	// KnownHostsFile defaults to ~/.ssh/known_hosts.
	KnownHostsFile string
	// InsecureHostKey accepts any host key: for throwaway machines only.
	InsecureHostKey bool
	// Bastion, when set, is the jump host the connection goes through.
	Bastion *SSHOptions
	// Timeout bounds the TCP connection and the SSH handshake (default 30s).
	Timeout time.Duration
}

const (
	defaultSSHPort    = 22
	defaultSSHUser    = "root"
	defaultSSHTimeout = 30 * time.Second
	// stderrTailLines is how much of a failed command's stderr its error shows.
	stderrTailLines = 10
)

// sshMachine is a host reached over SSH: one session per command.
type sshMachine struct {
	name    string // "user@host:port"
	user    string
	client  *ssh.Client
	bastion *ssh.Client // nil without a bastion; closed after client

	closeOnce sync.Once
	closeErr  error
}

var _ Machine = (*sshMachine)(nil)

// DialSSH connects to a host (through its bastion, if any), checks its host
// key and logs in. The caller closes the Machine.
func DialSSH(ctx context.Context, o SSHOptions) (Machine, error) {
	client, bastion, err := dialClient(ctx, o)
	if err != nil {
		return nil, err
	}
	o = o.withDefaults()
	return &sshMachine{name: o.name(), user: o.User, client: client, bastion: bastion}, nil
}

func (o SSHOptions) withDefaults() SSHOptions {
	if o.Port == 0 {
		o.Port = defaultSSHPort
	}
	if o.User == "" {
		o.User = defaultSSHUser
	}
	if o.Timeout == 0 {
		o.Timeout = defaultSSHTimeout
	}
	return o
}

func (o SSHOptions) hostPort() string {
	return net.JoinHostPort(o.Address, strconv.Itoa(o.Port))
}

func (o SSHOptions) name() string {
	return o.User + "@" + o.hostPort()
}

// dialClient logs in to the host o names and returns its client and, when
// it went through a bastion, the bastion's client (which must outlive it).
func dialClient(ctx context.Context, o SSHOptions) (client, bastion *ssh.Client, err error) {
	o = o.withDefaults()
	if o.Address == "" {
		return nil, nil, errors.New("ssh: no address given")
	}
	config, closeAuth, err := o.clientConfig()
	if err != nil {
		return nil, nil, fmt.Errorf("ssh %s: %w", o.name(), err)
	}
	// The agent is only asked during the handshake.
	defer closeAuth()

	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	var conn net.Conn
	if o.Bastion != nil {
		bastion, err = dialBastion(ctx, *o.Bastion)
		if err != nil {
			return nil, nil, fmt.Errorf("ssh %s: bastion: %w", o.name(), err)
		}
		conn, err = bastion.DialContext(ctx, "tcp", o.hostPort())
		if err != nil {
			bastion.Close()
			return nil, nil, fmt.Errorf("ssh %s: connect through bastion %s: %w", o.name(), o.Bastion.withDefaults().name(), err)
		}
	} else {
		dialer := net.Dialer{}
		conn, err = dialer.DialContext(ctx, "tcp", o.hostPort())
		if err != nil {
			return nil, nil, fmt.Errorf("ssh %s: %w", o.name(), err)
		}
	}
	client, err = handshake(ctx, conn, o.hostPort(), config)
	if err != nil {
		conn.Close()
		if bastion != nil {
			bastion.Close()
		}
		return nil, nil, fmt.Errorf("ssh %s: %w", o.name(), err)
	}
	return client, bastion, nil
}

// dialBastion logs in to a jump host. A bastion of a bastion stays open as
// long as the connection through it: its client closes when the one it
// carries does.
func dialBastion(ctx context.Context, o SSHOptions) (*ssh.Client, error) {
	client, outer, err := dialClient(ctx, o)
	if err != nil {
		return nil, err
	}
	if outer != nil {
		go func() {
			// Wait returns once client is closed (or its connection lost).
			_ = client.Wait()
			outer.Close()
		}()
	}
	return client, nil
}

// handshake runs the SSH handshake on conn, abandoning it when ctx ends.
func handshake(ctx context.Context, conn net.Conn, hostPort string, config *ssh.ClientConfig) (*ssh.Client, error) {
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	}
	// A cancelled context closes the connection, which ends the handshake.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	c, chans, reqs, err := ssh.NewClientConn(conn, hostPort, config)
	if !stop() {
		if err == nil {
			c.Close()
		}
		return nil, fmt.Errorf("handshake: %w", context.Cause(ctx))
	}
	if err != nil {
		return nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

// String is "user@host:port".
func (m *sshMachine) String() string { return m.name }

// Close closes the connection, then the bastion's; again, it does nothing.
func (m *sshMachine) Close() error {
	m.closeOnce.Do(func() {
		m.closeErr = m.client.Close()
		if m.bastion != nil {
			if err := m.bastion.Close(); m.closeErr == nil {
				m.closeErr = err
			}
		}
	})
	return m.closeErr
}

// Run runs command with sh as root and returns its stdout.
func (m *sshMachine) Run(ctx context.Context, command string) (string, error) {
	var stdout bytes.Buffer
	if err := m.exec(ctx, command, nil, &stdout); err != nil {
		return stdout.String(), err
	}
	return stdout.String(), nil
}

// Upload streams content into a temporary file beside path, then, once all
// of it arrived, sets its mode and renames it over path. The two steps are
// two sessions: were the rename in the session that receives the content,
// a cancelled upload (its channel closed) would end the remote cat as the
// end of the content does and install a truncated file. The second step
// checks the size before the rename.
func (m *sshMachine) Upload(ctx context.Context, content io.Reader, target string, mode os.FileMode) error {
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	temp := target + ".tmp." + hex.EncodeToString(suffix)
	counted := &countingReader{r: content}
	receive := fmt.Sprintf("mkdir -p %s && cat > %s", shellQuote(path.Dir(target)), shellQuote(temp))
	if err := m.exec(ctx, receive, counted, io.Discard); err != nil {
		m.removeAfterFailure(temp)
		return fmt.Errorf("upload %s: %w", target, err)
	}
	install := fmt.Sprintf(`size=$(wc -c < %[1]s) || exit 1
if [ "$size" -ne %[2]d ]; then echo "upload incomplete: $size of %[2]d bytes arrived" >&2; rm -f %[1]s; exit 1; fi
chmod %[3]o %[1]s && mv -f %[1]s %[4]s || { rm -f %[1]s; exit 1; }`, shellQuote(temp), counted.n, mode.Perm(), shellQuote(target))
	if err := m.exec(ctx, install, nil, io.Discard); err != nil {
		m.removeAfterFailure(temp)
		return fmt.Errorf("upload %s: %w", target, err)
	}
	return nil
}

// removeAfterFailure removes an upload's temporary file, on its own short
// deadline: the upload's context may be what ended it.
func (m *sshMachine) removeAfterFailure(temp string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = m.exec(ctx, "rm -f "+shellQuote(temp), nil, io.Discard)
}

// Download copies the file at path into w.
func (m *sshMachine) Download(ctx context.Context, file string, w io.Writer) error {
	if err := m.exec(ctx, "cat "+shellQuote(file), nil, w); err != nil {
		return fmt.Errorf("download %s: %w", file, err)
	}
	return nil
}

// exec runs command in a session of its own, as root, with stdin and
// stdout; a failure's error carries the exit status and stderr's last lines.
func (m *sshMachine) exec(ctx context.Context, command string, stdin io.Reader, stdout io.Writer) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %s: %w", m, commandSummary(command), context.Cause(ctx))
	}
	session, err := m.client.NewSession()
	if err != nil {
		return fmt.Errorf("%s: open session: %w", m, err)
	}
	defer session.Close()
	// The session copies stdin and stdout in goroutines of its own, which
	// may outlive a cancelled exec (below): past the guards' detach, they
	// no longer touch the caller's reader and writer.
	in := &guardedReader{r: stdin}
	out := &guardedWriter{w: stdout}
	stderr := &tailBuffer{limit: 16 << 10}
	session.Stdout, session.Stderr = out, stderr
	if stdin != nil {
		session.Stdin = in
	}
	if err := session.Start(rootCommand(m.user, command)); err != nil {
		return fmt.Errorf("%s: start %s: %w", m, commandSummary(command), err)
	}
	done := make(chan error, 1)
	go func() { done <- session.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		m.abandon(session, done)
		in.detach()
		out.detach()
		return fmt.Errorf("%s: %s: %w", m, commandSummary(command), context.Cause(ctx))
	}
	if err == nil {
		return nil
	}
	return commandError(m, command, err, stderr.String())
}

// abandonGrace is how long a cancelled command is given to end once its
// channel is closed: enough for one that reads stdin (an upload's cat) to
// see the end of it and exit, so that what follows sees it gone.
const abandonGrace = 2 * time.Second

// abandon ends a session whose context ended. Without a terminal, closing
// the channel does not end the remote command: it sees the end of its
// stdin, and sshd keeps the session until the command exits. A "signal"
// request reaches the command only through sudo: sshd refuses it for root
// logins (it runs them without privilege separation, which signalling
// needs), and sudo passes on TERM (the user may not signal root's
// processes, nor can sudo pass on KILL). A root command that reads no stdin
// runs to its end; the goroutine waiting for it ends then, or when the
// Machine is closed.
func (m *sshMachine) abandon(session *ssh.Session, done <-chan error) {
	if m.user != "root" {
		_ = session.Signal(ssh.SIGTERM)
	}
	_ = session.Close()
	select {
	case <-done:
	case <-time.After(abandonGrace):
	}
}

// rootCommand is the command line to send so that command runs with sh as
// root: as is for root, through sudo for anyone else. Always sh, whatever
// the user's login shell, so a command means the same on every host.
func rootCommand(user, command string) string {
	line := "sh -c " + shellQuote(command)
	if user != "root" {
		// -n: fail rather than wait for a password nobody will type.
		line = "sudo -n " + line
	}
	return line
}

// shellQuote quotes s as one word for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// SSHCommandError is a command that ran on a host and failed.
type SSHCommandError struct {
	Machine string
	Command string
	// ExitStatus is the command's exit status; -1 when it sent none (it was
	// killed by a signal, or the connection was lost).
	ExitStatus int
	// Signal names the signal that killed the command ("KILL"), if any.
	Signal string
	// Stderr is the last lines of the command's standard error.
	Stderr string
	// hint says what to do next, when the failure is a known one.
	hint string
}

func (e *SSHCommandError) Error() string {
	var msg strings.Builder
	fmt.Fprintf(&msg, "%s: %s ", e.Machine, commandSummary(e.Command))
	switch {
	case e.Signal != "":
		fmt.Fprintf(&msg, "killed by signal %s", e.Signal)
	case e.ExitStatus < 0:
		msg.WriteString("ended without an exit status")
	default:
		fmt.Fprintf(&msg, "exited with status %d", e.ExitStatus)
	}
	if e.hint != "" {
		msg.WriteString(": " + e.hint)
	}
	if e.Stderr != "" {
		msg.WriteString(":\n" + e.Stderr)
	}
	return msg.String()
}

func commandError(m *sshMachine, command string, err error, stderr string) error {
	commandErr := &SSHCommandError{Machine: m.name, Command: command, ExitStatus: -1, Stderr: lastLines(stderr, stderrTailLines)}
	var exitErr *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case errors.As(err, &exitErr):
		commandErr.ExitStatus = exitErr.ExitStatus()
		commandErr.Signal = exitErr.Signal()
	case errors.As(err, &missing):
	default:
		return fmt.Errorf("%s: %s: %w", m, commandSummary(command), err)
	}
	if m.user != "root" {
		commandErr.hint = sudoHint(m.user, commandErr.ExitStatus, stderr)
	}
	return commandErr
}

// sudoHint explains a failure of sudo itself rather than of the command.
func sudoHint(user string, status int, stderr string) string {
	switch {
	case strings.Contains(stderr, "sudo: a password is required"), strings.Contains(stderr, "sudo: a terminal is required"):
		return fmt.Sprintf("sudo asks %s for a password: monokube needs passwordless sudo "+
			"(a sudoers line like `%s ALL=(ALL) NOPASSWD: ALL`), or log in as root", user, user)
	case status == 127 && strings.Contains(stderr, "sudo") && strings.Contains(stderr, "not found"):
		return fmt.Sprintf("sudo is not installed: install it and give %s passwordless sudo, or log in as root", user)
	case strings.Contains(stderr, "is not in the sudoers file"), strings.Contains(stderr, "is not allowed to run sudo"):
		return fmt.Sprintf("%s may not use sudo: monokube needs passwordless sudo for it, or log in as root", user)
	}
	return ""
}

// commandSummary is a command's first line, shortened, for messages.
func commandSummary(command string) string {
	line, _, multiline := strings.Cut(strings.TrimSpace(command), "\n")
	if len(line) > 80 {
		line, multiline = line[:77], true
	}
	if multiline {
		line += "..."
	}
	return strconv.Quote(line)
}

// lastLines is the last n lines of s, without the final newline.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// tailBuffer keeps the last limit bytes written to it: a command's stderr
// can be long, only its end goes into an error.
type tailBuffer struct {
	limit int
	buf   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.limit {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.limit:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.buf) }

// guardedReader reads from r until detach, then never again: detach
// waits for a read in progress.
type guardedReader struct {
	mu       sync.Mutex
	r        io.Reader
	detached bool
}

func (g *guardedReader) Read(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.detached {
		return 0, io.EOF
	}
	return g.r.Read(p)
}

func (g *guardedReader) detach() {
	g.mu.Lock()
	g.detached = true
	g.mu.Unlock()
}

// guardedWriter writes to w until detach, then discards what it is given.
type guardedWriter struct {
	mu       sync.Mutex
	w        io.Writer
	detached bool
}

func (g *guardedWriter) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.detached {
		return len(p), nil
	}
	return g.w.Write(p)
}

func (g *guardedWriter) detach() {
	g.mu.Lock()
	g.detached = true
	g.mu.Unlock()
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
