package vm

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// agent talks QMP-style JSON to qemu-guest-agent through qemu's unix socket
// chardev (server=on,wait=off) bound to the guest's virtio-serial port
// org.qemu.guest_agent.0.
//
// Every conversation dials a new connection and starts with
// guest-sync-delimited: qemu keeps what the guest wrote after a client went
// away (a late answer to a timed-out request, or answers to requests written
// while the agent was not yet running) and hands it to the next client, so a
// client must skip to its own sync answer before it trusts what it reads.
type agent struct {
	socket string
	// mu serializes conversations: the chardev serves one client at a time,
	// and a second connection would wait in its backlog until the first closes.
	mu sync.Mutex
}

// agentConn is one conversation with the agent, after its sync.
type agentConn struct {
	conn   net.Conn
	reader *bufio.Reader
}

// agentError is an error the agent returned, e.g. {"class":"GenericError",...}.
type agentError struct {
	Class string `json:"class"`
	Desc  string `json:"desc"`
}

func (e *agentError) Error() string { return e.Class + ": " + e.Desc }

// callTimeout bounds one request and its answer when the caller's context
// has no earlier deadline: a guest-exec-status answer is immediate, so a
// silent agent is a dead one (or one not started yet).
const callTimeout = 30 * time.Second

// session dials the agent, syncs with it and runs talk. ctx's deadline bounds
// every read and write; its cancellation is seen between requests.
func (a *agent) session(ctx context.Context, talk func(*agentConn) error) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "unix", a.socket)
	if err != nil {
		return fmt.Errorf("dial guest agent %s: %w", a.socket, err)
	}
	defer conn.Close()
	c := &agentConn{conn: conn, reader: bufio.NewReaderSize(conn, 64<<10)}
	if err := c.sync(ctx); err != nil {
		return err
	}
	return talk(c)
}

// setDeadline applies ctx's deadline, or callTimeout from now if sooner.
func (c *agentConn) setDeadline(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	deadline := time.Now().Add(callTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	return c.conn.SetDeadline(deadline)
}

// sync resets the agent's parser (a 0xFF byte drops any half-written request
// a previous client left) and sends guest-sync-delimited with a fresh id. The
// agent answers with 0xFF then {"return": id}; everything before that is
// stale and skipped.
func (c *agentConn) sync(ctx context.Context) error {
	if err := c.setDeadline(ctx); err != nil {
		return err
	}
	id := rand.Int64N(1 << 31)
	request, _ := json.Marshal(map[string]any{"execute": "guest-sync-delimited", "arguments": map[string]any{"id": id}})
	if _, err := c.conn.Write(append([]byte{0xff}, append(request, '\n')...)); err != nil {
		return fmt.Errorf("guest-sync-delimited: %w", err)
	}
	for {
		if _, err := c.reader.ReadBytes(0xff); err != nil {
			return fmt.Errorf("guest-sync-delimited: %w", err)
		}
		line, err := c.reader.ReadBytes('\n')
		if err != nil {
			return fmt.Errorf("guest-sync-delimited: %w", err)
		}
		var answer struct {
			Return int64 `json:"return"`
		}
		if json.Unmarshal(line, &answer) == nil && answer.Return == id {
			return nil
		}
	}
}

// call sends one command and decodes its "return" into result (nil to
// ignore it). Each answer of qemu-ga is one line.
func (c *agentConn) call(ctx context.Context, command string, arguments, result any) error {
	if err := c.setDeadline(ctx); err != nil {
		return fmt.Errorf("%s: %w", command, err)
	}
	request := map[string]any{"execute": command}
	if arguments != nil {
		request["arguments"] = arguments
	}
	raw, err := json.Marshal(request)
	if err != nil {
		return err
	}
	if _, err := c.conn.Write(append(raw, '\n')); err != nil {
		return fmt.Errorf("%s: %w", command, err)
	}
	line, err := c.reader.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("%s: %w", command, err)
	}
	var answer struct {
		Return json.RawMessage `json:"return"`
		Error  *agentError     `json:"error"`
	}
	if err := json.Unmarshal(line, &answer); err != nil {
		return fmt.Errorf("%s: decode answer %q: %w", command, line, err)
	}
	if answer.Error != nil {
		return fmt.Errorf("%s: %w", command, answer.Error)
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(answer.Return, result); err != nil {
		return fmt.Errorf("%s: decode return %s: %w", command, answer.Return, err)
	}
	return nil
}

// send sends a command the agent does not answer when it succeeds
// (guest-shutdown), or whose answer nobody waits for.
func (c *agentConn) send(ctx context.Context, command string, arguments any) error {
	if err := c.setDeadline(ctx); err != nil {
		return err
	}
	raw, err := json.Marshal(map[string]any{"execute": command, "arguments": arguments})
	if err != nil {
		return err
	}
	_, err = c.conn.Write(append(raw, '\n'))
	return err
}

// execStatus is guest-exec-status's answer.
type execStatus struct {
	Exited       bool   `json:"exited"`
	ExitCode     *int   `json:"exitcode"`
	Signal       *int   `json:"signal"`
	OutData      string `json:"out-data"`
	ErrData      string `json:"err-data"`
	OutTruncated bool   `json:"out-truncated"`
	ErrTruncated bool   `json:"err-truncated"`
}

// exec runs argv through guest-exec, in a session and process group of
// its own (setsid), and polls guest-exec-status until it exits. The agent
// keeps at most 16 MiB of each output. When ctx ends first, the whole
// process group is killed and reaped before exec returns.
func (c *agentConn) exec(ctx context.Context, argv []string) (stdout, stderr string, exitCode int, err error) {
	// qemu-ga's child is not a group leader, so setsid execs in place (same
	// PID) instead of forking; --wait covers the other case.
	var started struct {
		PID int `json:"pid"`
	}
	arguments := map[string]any{"path": "/usr/bin/setsid", "arg": append([]string{"--wait"}, argv...), "capture-output": true}
	if err := c.call(ctx, "guest-exec", arguments, &started); err != nil {
		return "", "", -1, err
	}
	for wait := 20 * time.Millisecond; ; wait = min(2*wait, 500*time.Millisecond) {
		status, err := c.status(ctx, started.PID)
		if err == nil && status.Exited {
			return status.result()
		}
		if ctx.Err() != nil {
			c.killGroup(ctx, started.PID)
			return "", "", -1, fmt.Errorf("guest pid %d: %w", started.PID, ctx.Err())
		}
		if err != nil {
			return "", "", -1, err
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

func (c *agentConn) status(ctx context.Context, pid int) (*execStatus, error) {
	var status execStatus
	err := c.call(ctx, "guest-exec-status", map[string]any{"pid": pid}, &status)
	return &status, err
}

// killGroup kills the process group of a guest-exec'd process whose caller
// gave up, and waits (up to 30 s) until the agent has reaped its leader.
// The deadline may have cut an answer in half, so it syncs again first.
func (c *agentConn) killGroup(ctx context.Context, pid int) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if c.sync(ctx) != nil {
		return
	}
	kill := map[string]any{"path": "/bin/kill", "arg": []string{"-KILL", "--", fmt.Sprint(-pid)}}
	if c.call(ctx, "guest-exec", kill, nil) != nil {
		return
	}
	for ctx.Err() == nil {
		if status, err := c.status(ctx, pid); err != nil || status.Exited {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// result turns an exited status into outputs and a shell-style exit code
// (128+signal when a signal ended the process).
func (s *execStatus) result() (stdout, stderr string, exitCode int, err error) {
	out, err := base64.StdEncoding.DecodeString(s.OutData)
	if err != nil {
		return "", "", -1, fmt.Errorf("decode out-data: %w", err)
	}
	errOut, err := base64.StdEncoding.DecodeString(s.ErrData)
	if err != nil {
		return "", "", -1, fmt.Errorf("decode err-data: %w", err)
	}
	switch {
	case s.ExitCode != nil:
		exitCode = *s.ExitCode
	case s.Signal != nil:
		exitCode = 128 + *s.Signal
	default:
		exitCode = -1
	}
	if s.OutTruncated || s.ErrTruncated {
		err = errors.New("guest-exec output truncated by the agent (16 MiB limit)")
	}
	return string(out), string(errOut), exitCode, err
}
