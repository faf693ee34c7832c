package datastore

import (
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "github.com/k3s-io/kine/pkg/drivers/mysql" // registers "mysql://"
	_ "github.com/k3s-io/kine/pkg/drivers/pgsql" // registers "postgres://"
	kineserver "github.com/k3s-io/kine/pkg/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/config"
	"github.com/monokube/monokube/internal/datadir"
)

// sqliteParams make every acknowledged write durable: WAL with synchronous
// FULL fsyncs each commit, so neither kill -9 nor a power cut loses a write
// the API server confirmed. busy_timeout rides out checkpoint contention.
const sqliteParams = "_journal_mode=WAL&_busy_timeout=30000&_synchronous=FULL&_txlock=immediate"

// maxRequestBytes is etcd's default request limit plus gRPC overhead, as kine sets it.
const maxRequestBytes = 1.5*1024*1024 + 512*1024

// Kine runs kine in-process: an etcd v3 API over a unix socket in the data
// dir, backed by a SQL database.
type Kine struct {
	// Type is the config's storage type, for logs and errors.
	Type string
	// DSN is kine's datastore endpoint ("sqlite://<path>?<params>",
	// "postgres://...", "mysql://...").
	DSN string
	// TLS are the client files for an external database.
	TLS config.StorageTLS
	// DBFile is the SQLite database file; Init prepares it and its
	// directory. Empty for an external database.
	DBFile string
	// Socket is the unix socket the etcd API listens on.
	Socket string

	cancel    context.CancelFunc
	grpc      *grpc.Server
	wait      *sync.WaitGroup
	endpoints []string
}

var _ Datastore = (*Kine)(nil)

// SQLiteFile is the database file of a sqlite datastore.
func SQLiteFile(storage config.StorageSpec, layout datadir.Layout) string {
	_, path := sqliteDSN(storage.DataSource, layout)
	return path
}

func sqliteDSN(dataSource string, layout datadir.Layout) (dsn, path string) {
	switch {
	case strings.HasPrefix(dataSource, "sqlite://"):
		return dataSource, strings.SplitN(strings.TrimPrefix(dataSource, "sqlite://"), "?", 2)[0]
	case dataSource != "":
		return "sqlite://" + dataSource + "?" + sqliteParams, dataSource
	}
	return "sqlite://" + layout.DBFile() + "?" + sqliteParams, layout.DBFile()
}

func newSQLite(dataSource string, layout datadir.Layout) *Kine {
	dsn, path := sqliteDSN(dataSource, layout)
	return &Kine{
		Type:   config.StorageSQLite,
		DSN:    dsn,
		DBFile: path,
		Socket: layout.KineSocket(),
	}
}

// newSQL is kine on a PostgreSQL or MySQL server that every server shares.
func newSQL(storage config.StorageSpec, layout datadir.Layout) *Kine {
	return &Kine{Type: storage.Type, DSN: storage.DataSource, TLS: storage.TLS, Socket: layout.KineSocket()}
}

func (k *Kine) Name() string { return "datastore" }

func (k *Kine) Init(context.Context) error {
	if len(k.Socket) > datadir.MaxSocketPath {
		return fmt.Errorf("socket path %s is longer than %d bytes; use a shorter --data-dir", k.Socket, datadir.MaxSocketPath)
	}
	if err := os.MkdirAll(filepath.Dir(k.Socket), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(k.Socket), err)
	}
	// A socket left by a killed process would make the listen fail.
	if err := os.Remove(k.Socket); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove stale socket: %w", err)
	}
	if k.DBFile == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(k.DBFile), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(k.DBFile), err)
	}
	// SQLite gives its -wal and -shm files the database file's mode, so
	// creating it 0600 first keeps all three private.
	file, err := os.OpenFile(k.DBFile, os.O_CREATE|os.O_RDONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create database file: %w", err)
	}
	file.Close()
	if err := os.Chmod(k.DBFile, 0o600); err != nil {
		return fmt.Errorf("restrict database file: %w", err)
	}
	return nil
}

// Start opens the database through kine's SQL driver and serves kine's
// etcd API over the unix socket. It uses kine's driver and server packages
// directly rather than its endpoint package, which links every driver kine
// has (NATS, S3, pebble) into our binary.
func (k *Kine) Start(ctx context.Context) error {
	// kine stops when this context ends; Stop owns it, not the caller.
	kineCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	k.cancel = cancel
	k.wait = &sync.WaitGroup{}
	backend, db, err := k.open(kineCtx)
	if err != nil {
		cancel()
		return err
	}
	if err := backend.Start(kineCtx); err != nil {
		cancel()
		return fmt.Errorf("start kine: %w", err)
	}
	created := createdRevision{Backend: backend}
	if db != nil {
		if created.latest, err = sqliteLatest(kineCtx, db); err != nil {
			cancel()
			return err
		}
	}
	backend = created
	if k.DBFile == "" {
		// A database other servers write to as well.
		tracked := &polledRevision{Backend: backend}
		k.wait.Add(1)
		go func() { defer k.wait.Done(); tracked.follow(kineCtx) }()
		backend = tracked
	}
	k.grpc = grpc.NewServer(
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 2 * time.Hour, Timeout: 20 * time.Second}),
		// The API server's own limits for etcd requests (1.5 MiB objects).
		grpc.MaxRecvMsgSize(maxRequestBytes),
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.ChainUnaryInterceptor(recoverUnary),
		grpc.ChainStreamInterceptor(recoverStream),
	)
	kineserver.New(backend, "unix", 5*time.Second, "3.6.11").Register(k.grpc)
	listener, err := net.Listen("unix", k.Socket)
	if err != nil {
		cancel()
		return fmt.Errorf("listen on %s: %w", k.Socket, err)
	}
	k.wait.Add(1)
	go func() {
		defer k.wait.Done()
		if err := k.grpc.Serve(listener); err != nil {
			klog.ErrorS(err, "Datastore gRPC server ended")
		}
	}()
	k.endpoints = []string{"unix://" + k.Socket}
	klog.InfoS("Datastore listening", "type", k.Type, "endpoint", k.endpoints[0])
	return nil
}

// Ready is immediate: Listen returns once the database is open and the socket listens.
func (k *Kine) Ready(context.Context) error { return nil }

func (k *Kine) Client() Client { return Client{Endpoints: k.endpoints} }

func (k *Kine) Stop() error {
	if k.cancel == nil {
		return nil
	}
	// Let in-flight requests finish, but not for long: the API server, the
	// only client, has already stopped.
	stopped := make(chan struct{})
	go func() { k.grpc.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(2 * time.Second):
		k.grpc.Stop()
	}
	k.cancel()
	done := make(chan struct{})
	go func() { k.wait.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("kine did not stop within 10s")
	}
}
