package harness

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Database is a real PostgreSQL or MariaDB server a test runs in a node's
// network namespace, listening on that node's address so the other
// servers reach it too.
type Database struct {
	// DSN is what spec.storage.dataSource says; BadPassword the same with a
	// wrong password.
	DSN, BadPassword string
	cmd              *exec.Cmd
}

const dbPassword = "s3cret-pw"

// inNetNS runs a command inside n's network namespace.
func inNetNS(n *Node, command ...string) *exec.Cmd {
	return exec.Command("nsenter", append([]string{"--net=/run/netns/" + n.NetNS, "--"}, command...)...)
}

func mustRun(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	}
}

// StartPostgres initialises a cluster in a temp dir and runs it as the
// postgres user (it refuses root), password auth for the node subnet.
func StartPostgres(t testing.TB, n *Node, subnet string) *Database {
	t.Helper()
	// The postgres user must reach its files; test temp dirs are root's.
	dir, err := os.MkdirTemp("/tmp", "monokube-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	data := filepath.Join(dir, "pg")
	pwfile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwfile, []byte(dbPassword+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, exec.Command("chown", "-R", "postgres", dir))
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	mustRun(t, exec.Command("runuser", "-u", "postgres", "--", "/usr/lib/postgresql/15/bin/initdb", "-D", data,
		"--auth-local=trust", "--auth-host=scram-sha-256", "--pwfile", pwfile, "-U", "postgres"))
	hba := fmt.Sprintf("host all all %s.0/24 scram-sha-256\n", subnet)
	file, err := os.OpenFile(filepath.Join(data, "pg_hba.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = file.WriteString(hba)
	file.Close()
	cmd := inNetNS(n, "runuser", "-u", "postgres", "--", "/usr/lib/postgresql/15/bin/postgres", "-D", data,
		"-h", n.IP, "-p", "5432", "-k", dir)
	db := startDB(t, cmd, filepath.Join(dir, "postgres.log"), n.IP+":5432")
	db.DSN = fmt.Sprintf("postgres://postgres:%s@%s:5432/kubernetes?sslmode=disable", dbPassword, n.IP)
	db.BadPassword = strings.Replace(db.DSN, dbPassword, "wrong", 1)
	return db
}

// StartMariaDB initialises a data dir and runs mariadbd as root, with a
// user that may connect from the node subnet.
func StartMariaDB(t testing.TB, n *Node) *Database {
	t.Helper()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	socket := filepath.Join(dir, "mysqld.sock")
	mustRun(t, exec.Command("mariadb-install-db", "--user=root", "--datadir="+data, "--auth-root-authentication-method=socket",
		"--skip-test-db", "--skip-name-resolve"))
	cmd := inNetNS(n, "mariadbd", "--no-defaults", "--user=root", "--datadir="+data, "--socket="+socket,
		"--bind-address="+n.IP, "--port=3306", "--skip-name-resolve", "--pid-file="+filepath.Join(dir, "pid"))
	db := startDB(t, cmd, filepath.Join(dir, "mariadb.log"), n.IP+":3306")
	mustRun(t, exec.Command("mariadb", "--no-defaults", "-S", socket, "-u", "root", "-e",
		fmt.Sprintf("CREATE USER 'kube'@'%%' IDENTIFIED BY '%s'; GRANT ALL ON *.* TO 'kube'@'%%';", dbPassword)))
	db.DSN = fmt.Sprintf("mysql://kube:%s@tcp(%s:3306)/kubernetes", dbPassword, n.IP)
	db.BadPassword = strings.Replace(db.DSN, dbPassword, "wrong", 1)
	return db
}

// startDB starts a database process, stops it when the test ends, and
// waits until it accepts connections.
func startDB(t testing.TB, cmd *exec.Cmd, logPath, address string) *Database {
	t.Helper()
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start database: %v", err)
	}
	logFile.Close()
	db := &Database{cmd: cmd}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			raw, _ := os.ReadFile(logPath)
			t.Logf("--- %s ---\n%s", logPath, raw)
		}
	})
	Poll(t, time.Minute, "database at "+address, func(context.Context) (bool, error) {
		conn, err := net.DialTimeout("tcp", address, time.Second)
		if err == nil {
			conn.Close()
		}
		return err == nil, nil
	})
	return db
}
