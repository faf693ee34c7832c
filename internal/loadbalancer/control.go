package loadbalancer

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

// The worker and the balancer process (Standalone) talk over a unix socket
// in the node's run dir, one JSON object per line, each request answered by
// one reply:
//
//	hello            who is serving: its PID, program, version, address and servers
//	attach           this connection is the worker's: while none is open the
//	                 process exits after its linger time
//	servers          replace the server list (on an attached connection)
//	handoff          a newer balancer process takes over: the reply carries the
//	                 listening socket (SCM_RIGHTS) and the servers, after which
//	                 this process stops accepting, drains and exits
//	stop             stop at once (monokube reset)
type request struct {
	Op      string   `json:"op"`
	Servers []string `json:"servers,omitempty"`
}

type reply struct {
	PID        int      `json:"pid,omitempty"`
	Executable string   `json:"executable,omitempty"`
	Version    string   `json:"version,omitempty"`
	Address    string   `json:"address,omitempty"`
	Servers    []string `json:"servers,omitempty"`
	Error      string   `json:"error,omitempty"`
}

// controlTimeout bounds one request and its reply.
const controlTimeout = 5 * time.Second

// controlConn is one end of a control connection.
type controlConn struct {
	conn   *net.UnixConn
	reader *bufio.Reader
}

func dialControl(socket string) (*controlConn, error) {
	conn, err := net.DialTimeout("unix", socket, controlTimeout)
	if err != nil {
		return nil, err
	}
	return &controlConn{conn: conn.(*net.UnixConn), reader: bufio.NewReader(conn)}, nil
}

func newControlConn(conn *net.UnixConn) *controlConn {
	return &controlConn{conn: conn, reader: bufio.NewReader(conn)}
}

// call sends one request and reads its reply, and the file descriptor that
// came with it, if any.
func (c *controlConn) call(req request) (reply, *os.File, error) {
	_ = c.conn.SetDeadline(time.Now().Add(controlTimeout))
	defer func() { _ = c.conn.SetDeadline(time.Time{}) }()
	if err := c.send(req); err != nil {
		return reply{}, nil, err
	}
	// The descriptor, when sent, rides on the reply's first byte; reading
	// the line with ReadMsgUnix keeps the two together.
	line, file, err := c.readLineWithFile()
	if err != nil {
		return reply{}, nil, err
	}
	var rep reply
	if err := json.Unmarshal(line, &rep); err != nil {
		closeFile(file)
		return reply{}, nil, fmt.Errorf("API balancer control: bad reply %q: %w", line, err)
	}
	if rep.Error != "" {
		closeFile(file)
		return rep, nil, errors.New(rep.Error)
	}
	return rep, file, nil
}

func (c *controlConn) send(v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = c.conn.Write(append(raw, '\n'))
	return err
}

// sendWithFile sends v with file's descriptor attached.
func (c *controlConn) sendWithFile(v any, file *os.File) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, _, err = c.conn.WriteMsgUnix(append(raw, '\n'), syscall.UnixRights(int(file.Fd())), nil)
	return err
}

// readRequest reads the next request line (the server side reads no files).
func (c *controlConn) readRequest() (request, error) {
	line, err := c.reader.ReadBytes('\n')
	if err != nil {
		return request{}, err
	}
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		return request{}, fmt.Errorf("bad request %q: %w", line, err)
	}
	return req, nil
}

// readLineWithFile reads one reply line byte by byte with ReadMsgUnix, so
// that a descriptor sent with it is received rather than dropped by a
// buffered read. Replies are short; the cost does not matter.
// Only the side that sends requests reads this way; it never uses reader.
func (c *controlConn) readLineWithFile() ([]byte, *os.File, error) {
	var line []byte
	var file *os.File
	buf := make([]byte, 1)
	oob := make([]byte, syscall.CmsgSpace(4))
	for {
		n, oobn, _, _, err := c.conn.ReadMsgUnix(buf, oob)
		if err != nil {
			closeFile(file)
			return nil, nil, err
		}
		if oobn > 0 && file == nil {
			if file, err = fileFromRights(oob[:oobn]); err != nil {
				return nil, nil, err
			}
		}
		if n == 0 {
			closeFile(file)
			return nil, nil, errors.New("API balancer control: connection closed")
		}
		line = append(line, buf[0])
		if buf[0] == '\n' {
			return line, file, nil
		}
	}
}

func fileFromRights(oob []byte) (*os.File, error) {
	messages, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("API balancer control: %w", err)
	}
	for _, message := range messages {
		fds, err := syscall.ParseUnixRights(&message)
		if err != nil || len(fds) == 0 {
			continue
		}
		for _, extra := range fds[1:] {
			_ = syscall.Close(extra)
		}
		return os.NewFile(uintptr(fds[0]), "api-balancer-listener"), nil
	}
	return nil, errors.New("API balancer control: no descriptor in the handoff")
}

func closeFile(file *os.File) {
	if file != nil {
		_ = file.Close()
	}
}

func (c *controlConn) Close() error { return c.conn.Close() }
