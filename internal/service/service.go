// Package service installs monokube as a service of the host's init
// system (systemd or OpenRC), and tells systemd when the node is ready.
package service

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Init is the host's init system.
type Init string

const (
	Systemd Init = "systemd"
	OpenRC  Init = "openrc"
	None    Init = ""
)

// Detect finds the running init system the way each documents it:
// systemd's /run/systemd/system, OpenRC's /run/openrc.
func Detect() Init {
	switch {
	case exists("/run/systemd/system"):
		return Systemd
	case exists("/run/openrc") && exists("/sbin/openrc-run"):
		return OpenRC
	}
	return None
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// Spec is one service to install.
type Spec struct {
	// Role is "server" or "worker"; it names the service (monokube,
	// monokube-worker) and is the command's first argument.
	Role string
	// Binary is the absolute path of the monokube executable.
	Binary string
	// Args follow the role on the command line.
	Args []string
	// TokenFile, when set, is passed as --token-file; the token itself is
	// never written into the service file.
	TokenFile string
}

// Name is the service's name.
func (s Spec) Name() string {
	if s.Role == "worker" {
		return "monokube-worker"
	}
	return "monokube"
}

// EnvFile is read by the service for extra environment (proxies, GOGC).
func (s Spec) EnvFile() string { return "/etc/monokube/" + s.Name() + ".env" }

// CommandLine is the service's command, as words.
func (s Spec) CommandLine() []string {
	words := append([]string{s.Binary, s.Role}, s.Args...)
	if s.TokenFile != "" {
		words = append(words, "--token-file", s.TokenFile)
	}
	return words
}

// Path is where the service file goes for init.
func (s Spec) Path(init Init) string {
	if init == OpenRC {
		return filepath.Join("/etc/init.d", s.Name())
	}
	return filepath.Join("/etc/systemd/system", s.Name()+".service")
}

// Render returns the service file for init.
func (s Spec) Render(init Init) (string, error) {
	if !filepath.IsAbs(s.Binary) {
		return "", fmt.Errorf("the binary path %q is not absolute", s.Binary)
	}
	switch init {
	case Systemd:
		return s.systemdUnit(), nil
	case OpenRC:
		return s.openrcScript(), nil
	}
	return "", errors.New("no supported init system (systemd or OpenRC) is running")
}

// systemdQuote quotes one ExecStart word: double quotes with C escapes,
// and $ and % doubled so systemd expands neither.
func systemdQuote(word string) string {
	replacer := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "$", "$$", "%", "%%")
	return `"` + replacer.Replace(word) + `"`
}

// shellQuote quotes one word for sh.
func shellQuote(word string) string {
	return "'" + strings.ReplaceAll(word, "'", `'\''`) + "'"
}

func (s Spec) systemdUnit() string {
	var words []string
	for _, word := range s.CommandLine() {
		words = append(words, systemdQuote(word))
	}
	return fmt.Sprintf(`# Written by monokube install; replace with monokube install --force.
[Unit]
Description=monokube %[1]s
Documentation=https://github.com/monokube/monokube
Wants=network-online.target
After=network-online.target

[Service]
# monokube tells systemd when the node is ready (sd_notify READY=1).
Type=notify
EnvironmentFile=-%[2]s
ExecStart=%[3]s
# Containers outlive a restart of monokube: only the main process is
# stopped, and the cgroup tree below it is monokube's to manage.
KillMode=process
Delegate=yes
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=0
# An embedded component that ends the process (exit codes 10-18) is
# brought back.
Restart=always
RestartSec=5s

[Install]
WantedBy=multi-user.target
`, s.Role, s.EnvFile(), strings.Join(words, " "))
}

func (s Spec) openrcScript() string {
	var args []string
	for _, word := range s.CommandLine()[1:] {
		args = append(args, shellQuote(word))
	}
	return fmt.Sprintf(`#!/sbin/openrc-run
# Written by monokube install; replace with monokube install --force.
description="monokube %[1]s"
supervisor=supervise-daemon
command=%[2]s
command_args=%[3]s
output_log=/var/log/%[4]s.log
error_log=/var/log/%[4]s.log
# An embedded component that ends the process (exit codes 10-18) is
# brought back.
respawn_delay=5
respawn_max=0
# A stop returns once the process has ended (a server drains its API
# requests first), as systemd's does: reset and upgrades rely on that.
retry="TERM/90/KILL/5"
rc_ulimit="-n 1048576 -u unlimited"

# "use", not "need": Debian's OpenRC has no "net" service (ifupdown's
# networking is an LSB script) and would refuse to start us at all.
depend() {
	use net
	after network-online firewall
}

start_pre() {
	if [ -f %[5]s ]; then
		set -a
		. %[5]s
		set +a
	fi
}
`, s.Role, shellQuote(s.Binary), shellQuote(strings.Join(args, " ")), s.Name(), shellQuote(s.EnvFile()))
}
