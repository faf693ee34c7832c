package fleet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Backup takes a backup on the first running server (`monokube backup`)
// and fetches it into dir, returning the local path.
func (a *Applier) Backup(ctx context.Context, dir string) (string, error) {
	if err := a.prepare(ctx); err != nil {
		return "", err
	}
	defer a.closeAll()
	server, ok := a.runningServer()
	if !ok {
		return "", fmt.Errorf("no server of %s runs: nothing to back up", a.File.Metadata.Name)
	}
	m := a.machines[server.Name]
	began := time.Now()
	out, err := m.Run(ctx, remoteBinary+" backup --save-path "+remoteDataDir+"/snapshots")
	if err != nil {
		return "", &StepError{server.Name, "back up", err}
	}
	remote := strings.TrimSpace(lastLines(out, 1))
	a.step(server, "backup written: %s (%s)", remote, time.Since(began).Round(100*time.Millisecond))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	local := filepath.Join(dir, filepath.Base(remote))
	f, err := os.OpenFile(local, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return "", err
	}
	err = m.Download(ctx, remote, f)
	if closeErr := f.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		os.Remove(local)
		return "", &StepError{server.Name, "fetch the backup", err}
	}
	info, _ := os.Stat(local)
	a.step(server, "backup fetched: %s (%.1f MiB)", local, float64(info.Size())/(1<<20))
	return local, nil
}

func (a *Applier) runningServer() (Host, bool) {
	for _, h := range a.File.Servers() {
		if a.status[h.Name].Running {
			return h, true
		}
	}
	return Host{}, false
}

// Restore rebuilds the cluster from a backup: every service stopped, the
// first server of the file reset and restored from archive and started,
// the other servers reset (they join it anew), the workers started again
// (the CA is the same: they reconnect with their credentials); then an
// apply finishes what is missing.
func (a *Applier) Restore(ctx context.Context, archive string) error {
	if err := a.prepare(ctx); err != nil {
		return err
	}
	hosts := append(a.File.Workers(), reversed(a.File.Servers())...)
	for _, h := range hosts {
		if !a.status[h.Name].Running {
			continue
		}
		if err := a.service(h).stop(ctx, a.machines[h.Name], roleOf(h)); err != nil {
			a.closeAll()
			return &StepError{h.Name, "stop the service", err}
		}
		a.step(h, "stopped")
	}
	first := a.File.Servers()[0]
	m := a.machines[first.Name]
	for _, h := range a.File.Servers() {
		if _, err := a.machines[h.Name].Run(ctx, "[ ! -d "+remoteDataDir+" ] || "+remoteBinary+" reset --data-dir "+remoteDataDir); err != nil {
			a.closeAll()
			return &StepError{h.Name, "reset before the restore", err}
		}
		a.step(h, "reset")
	}
	const remoteArchive = "/var/tmp/monokube-restore.tar.gz"
	f, err := os.Open(archive)
	if err != nil {
		a.closeAll()
		return err
	}
	err = m.Upload(ctx, f, remoteArchive, 0o600)
	f.Close()
	if err != nil {
		a.closeAll()
		return &StepError{first.Name, "copy the backup", err}
	}
	if _, err := m.Run(ctx, remoteBinary+" restore "+remoteArchive+" --data-dir "+remoteDataDir+" && rm -f "+remoteArchive); err != nil {
		a.closeAll()
		return &StepError{first.Name, "restore", err}
	}
	a.step(first, "restored from %s", filepath.Base(archive))
	if err := a.service(first).start(ctx, m, RoleServer); err != nil {
		a.closeAll()
		return &StepError{first.Name, "start the service", err}
	}
	if err := a.waitAPI(ctx, first); err != nil {
		a.closeAll()
		return err
	}
	for _, h := range a.File.Workers() {
		if err := a.service(h).start(ctx, a.machines[h.Name], RoleWorker); err != nil {
			a.closeAll()
			return &StepError{h.Name, "start the service", err}
		}
		a.step(h, "started again")
	}
	a.closeAll()
	// The other servers join the restored one as new members, and every
	// node is waited for: what apply does for a cluster part-way there.
	return a.Apply(ctx)
}
