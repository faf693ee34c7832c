package fleet

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// The real sshd tests are in test/fleet (they need root for namespaces);
// these check the pieces that need no server.

func TestRootCommandQuotesForSh(t *testing.T) {
	for _, command := range []string{
		"echo hi; id -u",
		`echo 'single' "double $((1+2))" \back`,
		"printf '%s\\n' \"it's\" '$HOME'",
		"a=1\necho multi $a",
	} {
		want, err := exec.Command("sh", "-c", command).CombinedOutput()
		if err != nil {
			t.Fatalf("sh -c %q: %v", command, err)
		}
		// What sshd does with the line: the login shell runs it.
		got, err := exec.Command("sh", "-c", rootCommand("root", command)).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v", rootCommand("root", command), err)
		}
		if string(got) != string(want) {
			t.Errorf("%q through rootCommand printed %q, want %q", command, got, want)
		}
	}
}

func TestRootCommandUsesSudoForOtherUsers(t *testing.T) {
	if got, want := rootCommand("deploy", "id -u"), `sudo -n sh -c 'id -u'`; got != want {
		t.Errorf("rootCommand(deploy) = %q, want %q", got, want)
	}
	if got, want := rootCommand("root", "id -u"), `sh -c 'id -u'`; got != want {
		t.Errorf("rootCommand(root) = %q, want %q", got, want)
	}
}

func TestSudoFailuresSayWhatToDo(t *testing.T) {
	for _, tc := range []struct {
		stderr string
		status int
		want   string
	}{
		{"sudo: a password is required\n", 1, "passwordless sudo"},
		{"sudo: a terminal is required to read the password; either use the -S option\n", 1, "passwordless sudo"},
		{"sh: 1: sudo: not found\n", 127, "sudo is not installed"},
		{"deploy is not in the sudoers file.\n", 1, "may not use sudo"},
		{"ls: cannot access '/x': No such file or directory\n", 2, ""},
	} {
		hint := sudoHint("deploy", tc.status, tc.stderr)
		if tc.want == "" && hint != "" || !strings.Contains(hint, tc.want) {
			t.Errorf("sudoHint(%q) = %q, want it to say %q", tc.stderr, hint, tc.want)
		}
	}
	err := &SSHCommandError{Machine: "deploy@h:22", Command: "id -u", ExitStatus: 1, Stderr: "sudo: a password is required",
		hint: sudoHint("deploy", 1, "sudo: a password is required")}
	for _, want := range []string{"deploy@h:22", `"id -u"`, "status 1", "NOPASSWD", "sudo: a password is required"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestTailBufferKeepsTheEnd(t *testing.T) {
	tail := &tailBuffer{limit: 8}
	for _, chunk := range []string{"abc", "defgh", "ijklmnopq", "r"} {
		_, _ = tail.Write([]byte(chunk))
	}
	if got := tail.String(); got != "klmnopqr" {
		t.Errorf("tail = %q, want %q", got, "klmnopqr")
	}
	if got := lastLines("1\n2\n3\n4\n", 2); got != "3\n4" {
		t.Errorf("lastLines = %q", got)
	}
}

func TestHostKeyCheckSaysHowToTrustTheHost(t *testing.T) {
	dir := t.TempDir()
	known := mustKey(t)
	other := mustKey(t)
	file := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(file, []byte(knownhosts.Line([]string{"[10.0.0.5]:2222"}, known)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	o := SSHOptions{Address: "10.0.0.5", Port: 2222}
	check, algorithms, err := hostKeyCheck(file, o)
	if err != nil {
		t.Fatal(err)
	}
	remote := &net.TCPAddr{IP: net.ParseIP("10.0.0.5"), Port: 2222}
	if err := check("10.0.0.5:2222", remote, known); err != nil {
		t.Errorf("known key refused: %v", err)
	}
	if !slices.Equal(algorithms, []string{ssh.KeyAlgoED25519}) {
		t.Errorf("host key algorithms = %v, want only ed25519", algorithms)
	}
	err = check("10.0.0.5:2222", remote, other)
	for _, want := range []string{"10.0.0.5:2222 changed", "ssh-keygen -f " + file + " -R [10.0.0.5]:2222", "--insecure-host-key"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("changed key: error %v does not say %q", err, want)
		}
	}
	checkOther, _, err := hostKeyCheck(file, SSHOptions{Address: "10.0.0.6", Port: 2222})
	if err != nil {
		t.Fatal(err)
	}
	err = checkOther("10.0.0.6:2222", &net.TCPAddr{IP: net.ParseIP("10.0.0.6"), Port: 2222}, other)
	for _, want := range []string{"10.0.0.6:2222", "unknown", "ssh-keyscan -p 2222 10.0.0.6 >> " + file, "--insecure-host-key"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("unknown host: error %v does not say %q", err, want)
		}
	}

	// No known_hosts file: every host is unknown, with the same advice.
	check, algorithms, err = hostKeyCheck(filepath.Join(dir, "missing"), o)
	if err != nil {
		t.Fatal(err)
	}
	if algorithms != nil {
		t.Errorf("host key algorithms without a file = %v, want the defaults (nil)", algorithms)
	}
	if err := check("10.0.0.5:2222", remote, known); err == nil || !strings.Contains(err.Error(), "ssh-keyscan") {
		t.Errorf("no known_hosts file: error %v does not say ssh-keyscan", err)
	}
}

func TestKnownRSAKeyAllowsSHA2Signatures(t *testing.T) {
	if got := algorithmsForKey(ssh.KeyAlgoRSA); !slices.Equal(got, []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}) {
		t.Errorf("algorithms for ssh-rsa = %v", got)
	}
	private, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	public, err := ssh.NewPublicKey(&private.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if got := algorithmsForKey(public.Type()); !slices.Equal(got, []string{ssh.KeyAlgoECDSA256}) {
		t.Errorf("algorithms for ecdsa = %v", got)
	}
}

func mustKey(t *testing.T) ssh.PublicKey {
	t.Helper()
	public, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.NewPublicKey(public)
	if err != nil {
		t.Fatal(err)
	}
	return key
}
