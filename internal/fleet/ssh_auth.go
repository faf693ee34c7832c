package fleet

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// clientConfig is how to log in to the host o names: its user, its key (or
// the agent's keys) and its host key check. closeAuth ends the agent
// connection, once the handshake is over.
func (o SSHOptions) clientConfig() (config *ssh.ClientConfig, closeAuth func(), err error) {
	auth, closeAuth, err := o.authMethod()
	if err != nil {
		return nil, nil, err
	}
	config = &ssh.ClientConfig{User: o.User, Auth: []ssh.AuthMethod{auth}}
	if o.InsecureHostKey {
		config.HostKeyCallback = ssh.InsecureIgnoreHostKey()
		return config, closeAuth, nil
	}
	file := o.KnownHostsFile
	if file == "" {
		file = "~/.ssh/known_hosts"
	}
	if file, err = expandHome(file); err != nil {
		closeAuth()
		return nil, nil, err
	}
	config.HostKeyCallback, config.HostKeyAlgorithms, err = hostKeyCheck(file, o)
	if err != nil {
		closeAuth()
		return nil, nil, err
	}
	return config, closeAuth, nil
}

// authMethod is the key in KeyFile, or the agent's keys when there is none.
func (o SSHOptions) authMethod() (ssh.AuthMethod, func(), error) {
	if o.KeyFile != "" {
		file, err := expandHome(o.KeyFile)
		if err != nil {
			return nil, nil, err
		}
		pem, err := os.ReadFile(file)
		if err != nil {
			return nil, nil, fmt.Errorf("read key: %w", err)
		}
		signer, err := ssh.ParsePrivateKey(pem)
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return nil, nil, fmt.Errorf("key %s has a passphrase: add it to an SSH agent (ssh-add %s) and give no key file, so the agent's keys are used", file, file)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("key %s: %w", file, err)
		}
		return ssh.PublicKeys(signer), func() {}, nil
	}
	socket := os.Getenv("SSH_AUTH_SOCK")
	if socket == "" {
		return nil, nil, errors.New("no key file given and no SSH agent (SSH_AUTH_SOCK is not set): give the host's key file, or start an agent and add the key (ssh-add)")
	}
	conn, err := net.Dial("unix", socket)
	if err != nil {
		return nil, nil, fmt.Errorf("SSH agent at %s (SSH_AUTH_SOCK): %w", socket, err)
	}
	return ssh.PublicKeysCallback(agent.NewClient(conn).Signers), func() { conn.Close() }, nil
}

// hostKeyCheck checks host keys against the known_hosts file; its errors
// name the host and say how to trust it. A missing file knows no host.
// algorithms are those of the keys the file knows for the host.
func hostKeyCheck(file string, o SSHOptions) (check ssh.HostKeyCallback, algorithms []string, err error) {
	known, err := knownhosts.New(file)
	if errors.Is(err, os.ErrNotExist) {
		known = func(string, net.Addr, ssh.PublicKey) error { return &knownhosts.KeyError{} }
	} else if err != nil {
		return nil, nil, fmt.Errorf("known hosts: %w", err)
	}
	return func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := known(hostname, remote, key)
		var keyErr *knownhosts.KeyError
		var revoked *knownhosts.RevokedError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &revoked):
			return fmt.Errorf("host key of %s (%s) is revoked in %s:%d: refusing to connect",
				hostname, ssh.FingerprintSHA256(key), revoked.Revoked.Filename, revoked.Revoked.Line)
		case errors.As(err, &keyErr) && len(keyErr.Want) == 0:
			return fmt.Errorf("host key of %s (%s %s) is unknown: it is not in %s. "+
				"Add it after checking its fingerprint with `%s`, or accept any key with --insecure-host-key",
				hostname, key.Type(), ssh.FingerprintSHA256(key), file, keyscanCommand(o, file))
		case errors.As(err, &keyErr):
			var lines []string
			for _, want := range keyErr.Want {
				lines = append(lines, fmt.Sprintf("%s:%d (%s %s)", want.Filename, want.Line, want.Key.Type(), ssh.FingerprintSHA256(want.Key)))
			}
			return fmt.Errorf("host key of %s changed: it presents %s %s where the known hosts have %s. "+
				"Someone may be intercepting the connection; if the host was reinstalled, remove the old key with "+
				"`ssh-keygen -f %s -R %s` and add the new one with `%s`, or accept any key with --insecure-host-key",
				hostname, key.Type(), ssh.FingerprintSHA256(key), strings.Join(lines, ", "),
				file, knownhosts.Normalize(hostname), keyscanCommand(o, file))
		default:
			return fmt.Errorf("host key of %s: %w", hostname, err)
		}
	}, knownKeyAlgorithms(known, o.hostPort()), nil
}

// keyscanCommand is the command line that adds the host's keys to file.
func keyscanCommand(o SSHOptions, file string) string {
	command := fmt.Sprintf("ssh-keyscan -p %d %s >> %s", o.Port, o.Address, file)
	if o.Bastion != nil {
		command += " (run ssh-keyscan on the bastion, which reaches the host)"
	}
	return command
}

// knownKeyAlgorithms lists the host key algorithms of the keys file knows
// for hostPort, for ssh.ClientConfig.HostKeyAlgorithms; nil when it knows
// none. Without it the server picks its preferred key type, and a host
// known by another of its keys (an ed25519 line while the server offers
// ecdsa first) fails as a changed key (golang/go#29286).
func knownKeyAlgorithms(check ssh.HostKeyCallback, hostPort string) []string {
	// The check's error for a key no host has lists the keys it knows.
	public, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil
	}
	probe, err := ssh.NewPublicKey(public)
	if err != nil {
		return nil
	}
	var keyErr *knownhosts.KeyError
	if !errors.As(check(hostPort, &net.TCPAddr{IP: net.IPv4zero}, probe), &keyErr) {
		return nil
	}
	var algorithms []string
	seen := map[string]bool{}
	for _, want := range keyErr.Want {
		for _, algorithm := range algorithmsForKey(want.Key.Type()) {
			if !seen[algorithm] {
				seen[algorithm] = true
				algorithms = append(algorithms, algorithm)
			}
		}
	}
	return algorithms
}

// algorithmsForKey lists the signature algorithms a host key of keyType
// can be presented with: an RSA key with SHA-2 first.
func algorithmsForKey(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

// expandHome replaces a leading "~/" with the home directory.
func expandHome(file string) (string, error) {
	rest, ok := strings.CutPrefix(file, "~/")
	if !ok {
		return file, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("%s: %w", file, err)
	}
	return filepath.Join(home, rest), nil
}
