package service

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// TokenFile is where install keeps a worker's join token (0600).
const TokenFile = "/etc/monokube/worker-token"

// Install writes the service (and the token file, when token is set) and
// enables and starts it. An existing service is kept unless force.
func Install(init Init, spec Spec, token string, force bool) error {
	content, err := spec.Render(init)
	if err != nil {
		return err
	}
	path := spec.Path(init)
	if exists(path) && !force {
		return fmt.Errorf("%s exists; use --force to replace it", path)
	}
	if token != "" {
		if err := writeToken(TokenFile, token); err != nil {
			return err
		}
	}
	mode := os.FileMode(0o644)
	if init == OpenRC {
		mode = 0o755
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	for _, command := range enableCommands(init, spec.Name()) {
		if out, err := exec.Command(command[0], command[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%v: %w: %s", command, err, out)
		}
	}
	return nil
}

func enableCommands(init Init, name string) [][]string {
	if init == OpenRC {
		return [][]string{{"rc-update", "add", name, "default"}, {"rc-service", name, "start"}}
	}
	return [][]string{{"systemctl", "daemon-reload"}, {"systemctl", "enable", "--now", name}}
}

// Control runs start, stop or restart through the init system.
func Control(init Init, name, action string) error {
	var command []string
	switch init {
	case Systemd:
		command = []string{"systemctl", action, name}
	case OpenRC:
		command = []string{"rc-service", name, action}
	default:
		return fmt.Errorf("no supported init system (systemd or OpenRC) is running: %s %s by hand", action, name)
	}
	if out, err := exec.Command(command[0], command[1:]...).CombinedOutput(); err != nil {
		return fmt.Errorf("%v: %w: %s", command, err, out)
	}
	return nil
}

// Uninstall stops and disables the service and removes its file (and the
// worker's token file).
func Uninstall(init Init, spec Spec) error {
	var commands [][]string
	switch init {
	case Systemd:
		commands = [][]string{{"systemctl", "disable", "--now", spec.Name()}}
	case OpenRC:
		commands = [][]string{{"rc-service", spec.Name(), "stop"}, {"rc-update", "del", spec.Name(), "default"}}
	default:
		return fmt.Errorf("no supported init system (systemd or OpenRC) is running")
	}
	for _, command := range commands {
		_ = exec.Command(command[0], command[1:]...).Run() // already stopped or disabled is fine
	}
	if err := os.Remove(spec.Path(init)); err != nil && !os.IsNotExist(err) {
		return err
	}
	if spec.Role == "worker" {
		_ = os.Remove(TokenFile)
	}
	if init == Systemd {
		_ = exec.Command("systemctl", "daemon-reload").Run()
	}
	return nil
}

// writeToken keeps the token readable by root only, also when the file
// existed with a looser mode (WriteFile keeps an existing file's mode).
func writeToken(path, token string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return fmt.Errorf("write the token file: %w", err)
	}
	return os.Chmod(path, 0o600)
}
