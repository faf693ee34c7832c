package datastore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/k3s-io/kine/pkg/drivers"
	"github.com/k3s-io/kine/pkg/drivers/generic"
	"github.com/k3s-io/kine/pkg/drivers/sqlite"
	kineserver "github.com/k3s-io/kine/pkg/server"
	kinetls "github.com/k3s-io/kine/pkg/tls"
	kineutil "github.com/k3s-io/kine/pkg/util"
	"github.com/sirupsen/logrus"

	"github.com/monokube/monokube/internal/config"
)

// connectTimeout bounds how long start waits for an external database
// that does not answer; kine alone would retry for five minutes.
const connectTimeout = 60 * time.Second

// open connects kine's SQL driver to the database. For an external
// database a failure is reported at once, naming the setting: kine only
// logs its connection errors and retries, which leaves a user with a
// server that hangs.
func (k *Kine) open(ctx context.Context) (kineserver.Backend, *sql.DB, error) {
	cfg := &drivers.Config{
		Endpoint: k.DSN,
		BackendTLSConfig: kinetls.Config{
			CAFile: k.TLS.CAFile, CertFile: k.TLS.CertFile, KeyFile: k.TLS.KeyFile,
		},
		// kine as a library has no defaults of its own: these are its CLI's.
		ConnectionPoolConfig: generic.ConnectionPoolConfig{MaxIdle: 20, MaxIdleTime: 2 * time.Minute},
		CompactTimeout:       5 * time.Second,
		CompactMinRetain:     1000,
		CompactBatchSize:     1000,
		PollBatchSize:        500,
		PollInterval:         time.Second,
	}
	if k.Type == config.StorageSQLite {
		// kine's SQLite variant directly, as drivers.New would pick it, for
		// its database handle (createdRevision's prepared query).
		cfg.Scheme, cfg.DataSourceName = kineutil.SchemeAndAddress(cfg.Endpoint)
		backend, dialect, err := sqlite.NewVariant(ctx, k.wait, "sqlite3", cfg)
		if err != nil {
			return nil, nil, fmt.Errorf("open datastore: %w", err)
		}
		// One writer at a time in Go rather than in SQLite's busy handler,
		// which sleeps 1 to 100 ms between tries and lets a write starve
		// behind others.
		dialect.LockWrites = true
		return backend, dialect.DB, nil
	}
	// kine closes the database when the context it opened it with ends,
	// so the wait is bounded by cancelling kine's own context, and only on
	// failure.
	watch := &connectErrors{cancel: k.cancel}
	logrus.AddHook(watch)
	defer removeHook(watch)
	timer := time.AfterFunc(connectTimeout, k.cancel)
	_, backend, err := drivers.New(ctx, k.wait, cfg)
	timer.Stop()
	if err == nil {
		return backend, nil, nil
	}
	if last := watch.last(); last != "" && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		err = errors.New(last)
	}
	return nil, nil, fmt.Errorf("spec.storage.dataSource: cannot use the %s database: %w", k.Type, err)
}

// connectErrors collects kine's "Failed to ping database" log lines and
// ends the wait early on errors that retrying cannot fix.
type connectErrors struct {
	mu      sync.Mutex
	message string
	cancel  context.CancelFunc
}

// permanent are the database answers that no retry changes.
var permanent = []string{
	"password authentication failed", // PostgreSQL
	"Access denied",                  // MySQL/MariaDB
	"does not exist",                 // role or database
	"no pg_hba.conf entry",
	"certificate",
	"tls:",
}

func (c *connectErrors) Levels() []logrus.Level {
	return []logrus.Level{logrus.ErrorLevel, logrus.WarnLevel}
}

func (c *connectErrors) Fire(entry *logrus.Entry) error {
	if !strings.Contains(entry.Message, "database") {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.message = entry.Message
	for _, p := range permanent {
		if strings.Contains(entry.Message, p) && c.cancel != nil {
			c.cancel()
		}
	}
	return nil
}

func (c *connectErrors) last() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.message
}

func removeHook(hook logrus.Hook) {
	logger := logrus.StandardLogger()
	kept := logrus.LevelHooks{}
	for level, hooks := range logger.Hooks {
		for _, h := range hooks {
			if h != hook {
				kept[level] = append(kept[level], h)
			}
		}
	}
	logger.ReplaceHooks(kept)
}
