package loadbalancer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/klog/v2"
)

// Process is the worker's handle on its balancer process (Standalone): it
// finds the one running, or starts one, and keeps it informed of the API
// servers. Closing the handle leaves the process running, which is the
// point: the next start of the worker attaches to it again.
type Process struct {
	// Socket, PIDFile and Listen are as in Standalone.
	Socket, PIDFile, Listen string
	// Initial is the list to start a new process with, and the fallback
	// WatchServers goes back to.
	Initial []string
	// LogFile takes a started process's output.
	LogFile string
	// Executable and Version are this program's; a process started by
	// another program (an upgrade) is replaced by one of this program.
	Executable, Version string
	// Command is the argument list that runs Standalone with this program.
	Command func(p *Process) []string

	mu   sync.Mutex
	conn *controlConn
	// servers is the process's list as it last answered; sent is the list
	// last given to SetServers, sent again to a replacement process.
	servers, sent []string
	cancel        context.CancelFunc
	done          chan struct{}
}

// startTimeout bounds how long a new balancer process has to answer.
const startTimeout = 15 * time.Second

// keepInterval is how often the handle checks that the process is still
// there, so a killed one is replaced within seconds.
const keepInterval = 2 * time.Second

// Attach connects to the running balancer process or starts one, and keeps
// the connection (and the process) alive until Close.
func (p *Process) Attach(ctx context.Context) error {
	if err := p.connect(); err != nil {
		return err
	}
	ctx, p.cancel = context.WithCancel(context.WithoutCancel(ctx))
	p.done = make(chan struct{})
	go p.keep(ctx)
	return nil
}

// connect attaches to a process of this program, starting one first when
// none runs or the one running is another program's.
func (p *Process) connect() error {
	if conn, rep, err := p.hello(); err == nil {
		if rep.Executable == p.Executable && rep.Version == p.Version {
			return p.attachTo(conn)
		}
		_ = conn.Close()
		klog.InfoS("API balancer process of another program runs; starting this program's to take over", "pid", rep.PID, "running", rep.Version, "this", p.Version)
	}
	pid, err := p.start()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(startTimeout)
	for {
		conn, rep, err := p.hello()
		if err == nil && rep.PID == pid {
			return p.attachTo(conn)
		}
		if conn != nil {
			_ = conn.Close()
		}
		if !processAlive(pid) || time.Now().After(deadline) {
			return fmt.Errorf("API balancer process (pid %d) did not come up: %s", pid, p.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *Process) hello() (*controlConn, reply, error) {
	conn, err := dialControl(p.Socket)
	if err != nil {
		return nil, reply{}, err
	}
	rep, _, err := conn.call(request{Op: "hello"})
	if err != nil {
		_ = conn.Close()
		return nil, reply{}, err
	}
	return conn, rep, nil
}

func (p *Process) attachTo(conn *controlConn) error {
	rep, _, err := conn.call(request{Op: "attach"})
	if err != nil {
		_ = conn.Close()
		return fmt.Errorf("attach to the API balancer process: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil {
		_ = p.conn.Close()
	}
	p.conn, p.servers = conn, rep.Servers
	klog.InfoS("API balancer process attached", "pid", rep.PID, "address", rep.Address, "servers", rep.Servers)
	return nil
}

// start runs a new balancer process in a session of its own (a terminal's
// Ctrl-C or the worker's exit must not reach it) and reaps it if it ends
// while this process runs.
func (p *Process) start() (int, error) {
	if err := os.MkdirAll(filepath.Dir(p.LogFile), 0o700); err != nil {
		return 0, fmt.Errorf("API balancer log: %w", err)
	}
	log, err := os.OpenFile(p.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, fmt.Errorf("API balancer log: %w", err)
	}
	defer log.Close()
	args := p.Command(p)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start the API balancer process: %w", err)
	}
	go func() { _ = cmd.Wait() }()
	klog.InfoS("API balancer process started", "pid", cmd.Process.Pid, "log", p.LogFile)
	return cmd.Process.Pid, nil
}

// keep checks on the process and replaces it if it went away.
func (p *Process) keep(ctx context.Context) {
	defer close(p.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(keepInterval):
		}
		if err := p.call(request{Op: "hello"}); err == nil {
			continue
		} else if ctx.Err() == nil {
			klog.InfoS("API balancer process lost; starting another", "err", err)
		}
		if err := p.connect(); err != nil {
			klog.ErrorS(err, "API balancer process could not be replaced; retrying")
			continue
		}
		// A new process starts from the list this one last sent.
		p.mu.Lock()
		sent := p.sent
		p.mu.Unlock()
		if sent != nil {
			p.SetServers(sent)
		}
	}
}

// call sends req on the attached connection.
func (p *Process) call(req request) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == nil {
		return errors.New("not attached")
	}
	rep, _, err := p.conn.call(req)
	if err != nil {
		_ = p.conn.Close()
		p.conn = nil
		return err
	}
	p.servers = rep.Servers
	return nil
}

// URL is the server URL for the node's kubeconfigs.
func (p *Process) URL() string { return "https://" + p.Listen }

// Servers is the process's current list.
func (p *Process) Servers() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.servers)
}

// SetServers replaces the process's list (see LoadBalancer.SetServers).
func (p *Process) SetServers(servers []string) {
	p.mu.Lock()
	p.sent = slices.Clone(servers)
	p.mu.Unlock()
	if err := p.call(request{Op: "servers", Servers: servers}); err != nil {
		klog.InfoS("API balancer process: servers not sent; sent again once it is back", "err", err)
	}
}

// Fallback is the list to go back to while the cluster publishes none.
func (p *Process) Fallback() []string { return p.Initial }

// Close detaches, leaving the process running for the next start.
func (p *Process) Close() {
	if p.cancel != nil {
		p.cancel()
		<-p.done
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn != nil {
		_ = p.conn.Close()
		p.conn = nil
	}
}

// Shutdown stops the process, for a worker that will not start again here
// (a first join that failed).
func (p *Process) Shutdown() {
	_ = p.call(request{Op: "stop"})
	p.Close()
}

// StopProcess stops the balancer process of a node that is not running
// (monokube reset): through its control socket, else by the PID it
// recorded, checked to be a balancer process still.
func StopProcess(socket, pidFile string) error {
	if conn, err := dialControl(socket); err == nil {
		defer conn.Close()
		if rep, _, err := conn.call(request{Op: "stop"}); err == nil {
			return waitGone(rep.PID)
		}
	}
	raw, err := os.ReadFile(pidFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var pid int
	if _, err := fmt.Sscan(string(raw), &pid); err != nil || pid <= 1 {
		return nil
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), StandaloneCommand) {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop the API balancer process %d: %w", pid, err)
	}
	return waitGone(pid)
}

// StandaloneCommand is the (hidden) monokube command that runs Standalone.
const StandaloneCommand = "api-balancer"

func waitGone(pid int) error {
	deadline := time.Now().Add(10 * time.Second)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("API balancer process %d still runs", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// processAlive is false for a process that is gone or a zombie.
func processAlive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses.
	if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

// logTail is the end of the process's log, for an error message.
func (p *Process) logTail() string {
	raw, err := os.ReadFile(p.LogFile)
	if err != nil {
		return "no log"
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	return strings.Join(lines[max(0, len(lines)-5):], "\n")
}
