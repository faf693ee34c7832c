// Package nettools runs the packet-filter programs monokube carries
// (iptables in both backends, ip6tables, nft, ipset, conntrack) so that
// kube-proxy, the CNI plugins, flannel and the NetworkPolicy controller find
// them in PATH on a host that has none installed.
//
// They are Debian's builds with the libraries and the dynamic loader they
// link (hack/nettools assembles them): a static build needs libmnl and
// libnftnl sources, which the package mirrors reachable from our build do
// not serve. Their interpreter path names the host's loader, so each tool
// name is a link to a small program (cmd/monokube-netexec) that starts the
// bundled loader on the bundled executable with the bundled libraries.
package nettools

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

const (
	// Launcher is the program every tool name links to.
	Launcher = "monokube-netexec"
	// Dir is the bundled tree beside the launcher: lib/ (the loader and
	// libraries), sbin/ (the executables) and xtables/ (iptables' extensions).
	Dir = "nettools"
	// ModeFile records the iptables backend the node chose (Detect), read
	// by every iptables command without a backend in its name.
	ModeFile = "iptables-mode"
)

// Backends of iptables; the same kernel can run both, but rules of one are
// invisible to the other, so every program on a node must use one.
const (
	Legacy = "legacy"
	NFT    = "nft"
)

// iptablesCommands are the names both xtables multi-binaries answer to.
var iptablesCommands = []string{"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save", "ip6tables-restore"}

// others are the remaining tools, each its own executable in sbin/.
var others = []string{"nft", "ipset", "conntrack"}

// commands maps every command name the bundle provides to its executable
// in sbin/; "" marks the plain iptables commands, which run the node's
// backend. The xtables multi-binaries pick their command from argv[0].
func commands() map[string]string {
	names := map[string]string{}
	for _, other := range others {
		names[other] = other
	}
	for _, command := range iptablesCommands {
		names[command] = ""
		family, action, _ := strings.Cut(command, "-")
		for _, backend := range []string{Legacy, NFT} {
			name := family + "-" + backend
			if action != "" {
				name += "-" + action
			}
			names[name] = "xtables-" + backend + "-multi"
		}
	}
	return names
}

// Names lists every command name the bundle provides.
func Names() []string {
	names := slices.Collect(maps.Keys(commands()))
	slices.Sort(names)
	return names
}

// resolve maps a command name to its executable in sbin/.
func resolve(name, mode string) (string, error) {
	executable, ok := commands()[name]
	if !ok {
		return "", fmt.Errorf("%s is not one of the bundled network tools (%s)", name, strings.Join(Names(), ", "))
	}
	if executable == "" {
		executable = "xtables-" + mode + "-multi"
	}
	return executable, nil
}

// Mode reads the backend recorded in dir, NFT when none is recorded.
func Mode(dir string) string {
	raw, err := os.ReadFile(filepath.Join(dir, ModeFile))
	if err == nil && strings.TrimSpace(string(raw)) == Legacy {
		return Legacy
	}
	return NFT
}

// Exec replaces the process with the bundled command name (argv[0]'s base
// name), run from dir (the launcher's directory) with args.
func Exec(dir, name string, args []string) error {
	executable, err := resolve(name, Mode(dir))
	if err != nil {
		return err
	}
	root := filepath.Join(dir, Dir)
	argv := append([]string{loader, "--library-path", filepath.Join(root, "lib"), "--argv0", name,
		filepath.Join(root, "sbin", executable)}, args...)
	// iptables loads its match and target extensions from here; the host's
	// (another version, or none) must not be mixed in.
	env := append(os.Environ(), "XTABLES_LIBDIR="+filepath.Join(root, "xtables"))
	path := filepath.Join(root, "lib", loader)
	if err := syscall.Exec(path, argv, env); err != nil {
		return fmt.Errorf("run %s: %w", path, err)
	}
	return nil
}

// Link makes every command name in dir a symbolic link to the launcher.
func Link(dir string) error {
	for _, name := range Names() {
		target := filepath.Join(dir, name)
		if err := os.Remove(target); err != nil && !os.IsNotExist(err) {
			return err
		}
		if err := os.Symlink(Launcher, target); err != nil {
			return fmt.Errorf("link %s: %w", name, err)
		}
	}
	return nil
}
