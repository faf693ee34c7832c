package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// Where the fleet tool puts monokube on a host: the paths `install` and a
// user following the README use too.
const (
	remoteBinary  = "/usr/local/bin/monokube"
	remoteConfig  = "/etc/monokube/monokube.yaml"
	remoteDataDir = "/var/lib/monokube"
	remoteToken   = "/etc/monokube/worker-token"
	remoteArgs    = "/etc/monokube/fleet-args"
	remoteAdmin   = remoteDataDir + "/pki/admin.conf"
)

// service runs monokube on one host: through its init system (`monokube
// install|start|stop`, systemd or OpenRC), or with the commands the
// cluster file gives for hosts that have neither.
type service struct {
	commands *ServiceCommands
}

// roleOf is the service a host runs.
func roleOf(h Host) string {
	if h.IsServer() {
		return RoleServer
	}
	return RoleWorker
}

// install writes and starts the service with args (a worker's token apart,
// in a 0600 file, never on a command line another user could read).
func (s service) install(ctx context.Context, m Machine, role string, args []string, token string) error {
	if s.commands == nil {
		command := remoteBinary + " install " + role + " " + shellJoin(args)
		if token != "" {
			if err := m.Upload(ctx, strings.NewReader(token+"\n"), remoteToken+".new", 0o600); err != nil {
				return err
			}
			command += " --token-file " + remoteToken + ".new && rm -f " + remoteToken + ".new"
		}
		_, err := m.Run(ctx, command+" --force")
		if err != nil && strings.Contains(err.Error(), "no supported init system") {
			return fmt.Errorf("%w\n(this host runs neither systemd nor OpenRC: say how to start and stop monokube there with service: {start: ..., stop: ...} under this host in the cluster file)", err)
		}
		return err
	}
	if token != "" {
		if err := m.Upload(ctx, strings.NewReader(token+"\n"), remoteToken, 0o600); err != nil {
			return err
		}
		args = append(args, "--token-file", remoteToken)
	}
	if err := m.Upload(ctx, strings.NewReader(shellJoin(args)+"\n"), remoteArgs, 0o600); err != nil {
		return err
	}
	return s.start(ctx, m, role)
}

func (s service) start(ctx context.Context, m Machine, role string) error {
	if s.commands == nil {
		_, err := m.Run(ctx, remoteBinary+" start "+role)
		return err
	}
	_, err := m.Run(ctx, s.env(role)+s.commands.Start)
	return err
}

func (s service) stop(ctx context.Context, m Machine, role string) error {
	if s.commands == nil {
		_, err := m.Run(ctx, remoteBinary+" stop "+role)
		return err
	}
	_, err := m.Run(ctx, s.env(role)+s.commands.Stop)
	return err
}

// env sets MONOKUBE_ROLE and MONOKUBE_ARGS for the file's own commands.
func (s service) env(role string) string {
	return fmt.Sprintf(`MONOKUBE_ROLE=%s MONOKUBE_ARGS="$(cat %s 2>/dev/null)" `, role, remoteArgs)
}

// uninstall stops the service and removes it; a host never installed is fine.
func (s service) uninstall(ctx context.Context, m Machine, role string) error {
	if s.commands == nil {
		_, err := m.Run(ctx, remoteBinary+" uninstall "+role+" || true")
		return err
	}
	if err := s.stop(ctx, m, role); err != nil {
		return err
	}
	_, err := m.Run(ctx, "rm -f "+remoteArgs+" "+remoteToken)
	return err
}

// hostStatus is what `monokube status -o json` says of a host.
type hostStatus struct {
	Running   bool   `json:"running"`
	Version   string `json:"version"`
	APIReady  string `json:"apiReadyz"`
	NodeReady string `json:"nodeReady"`
	// Binary is the SHA-256 of the installed binary ("" when none).
	Binary string `json:"-"`
	// Config is the installed server config ("" when none).
	Config string `json:"-"`
}

// probe reads what a host has: the binary's hash, the config, and the
// status of what runs.
func probe(ctx context.Context, m Machine) (hostStatus, error) {
	var st hostStatus
	out, err := m.Run(ctx, fmt.Sprintf(`sha256sum %s 2>/dev/null | cut -d' ' -f1; echo ---; cat %s 2>/dev/null; echo ---; %s status -o json 2>/dev/null || true`,
		remoteBinary, remoteConfig, remoteBinary))
	if err != nil {
		return st, err
	}
	parts := strings.SplitN(out, "---\n", 3)
	if len(parts) != 3 {
		return st, fmt.Errorf("unexpected probe output: %q", out)
	}
	if status := strings.TrimSpace(parts[2]); strings.HasPrefix(status, "{") {
		if err := json.Unmarshal([]byte(status), &st); err != nil {
			return st, fmt.Errorf("monokube status: %w", err)
		}
	}
	st.Binary = strings.TrimSpace(parts[0])
	st.Config = parts[1]
	return st, nil
}

// shellJoin quotes args for sh.
func shellJoin(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = shellQuote(a)
	}
	return strings.Join(quoted, " ")
}
