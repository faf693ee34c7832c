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

	"github.com/k3s-io/kine/pkg/drivers"
	"github.com/k3s-io/kine/pkg/drivers/generic"
	_ "github.com/k3s-io/kine/pkg/drivers/sqlite" // registers "sqlite://"
	kineserver "github.com/k3s-io/kine/pkg/server"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/datadir"
)

// sqliteParams make every acknowledged write durable: WAL with synchronous
// FULL fsyncs each commit, so neither kill -9 nor a power cut loses a write
// the API server confirmed. busy_timeout rides out checkpoint contention.
const sqliteParams = "_journal_mode=WAL&_busy_timeout=30000&_synchronous=FULL&_txlock=immediate"

// maxRequestBytes is etcd's default request limit plus gRPC overhead, as kine sets it.
const maxRequestBytes = 1.5*1024*1024 + 512*1024

// maxUnixSocketPath is the sun_path limit (108 bytes) minus the terminator.
const maxUnixSocketPath = 107

// Kine runs kine in-process: an etcd v3 API over a unix socket in the data
// dir, backed by a SQL database.
type Kine struct {
	// DSN is kine's datastore endpoint ("sqlite://<path>?<params>").
	DSN string
	// DBFile is the SQLite database file; Init prepares it and its directory.
	DBFile string
	// Socket is the unix socket the etcd API listens on.
	Socket string

	cancel    context.CancelFunc
	grpc      *grpc.Server
	wait      *sync.WaitGroup
	endpoints []string
}

var _ Datastore = (*Kine)(nil)

func newSQLite(dataSource string, layout datadir.Layout) *Kine {
	path := layout.DBFile()
	dsn := "sqlite://" + path + "?" + sqliteParams
	switch {
	case strings.HasPrefix(dataSource, "sqlite://"):
		dsn = dataSource
		path = strings.SplitN(strings.TrimPrefix(dataSource, "sqlite://"), "?", 2)[0]
	case dataSource != "":
		path = dataSource
		dsn = "sqlite://" + path + "?" + sqliteParams
	}
	return &Kine{
		DSN:    dsn,
		DBFile: path,
		Socket: layout.KineSocket(),
	}
}

func (k *Kine) Name() string { return "datastore" }

func (k *Kine) Init(context.Context) error {
	if len(k.Socket) > maxUnixSocketPath {
		return fmt.Errorf("socket path %s is longer than %d bytes; use a shorter --data-dir", k.Socket, maxUnixSocketPath)
	}
	for _, dir := range []string{filepath.Dir(k.DBFile), filepath.Dir(k.Socket)} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
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
	// A socket left by a killed process would make the listen fail.
	if err := os.Remove(k.Socket); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove stale socket: %w", err)
	}
	return nil
}

// Start opens the database through kine's SQL driver and serves kine's
// etcd API over the unix socket. It uses kine's driver and server packages
// directly rather than its endpoint package, which links every driver kine
// has (NATS, S3, pebble, MySQL, PostgreSQL) into our binary.
func (k *Kine) Start(ctx context.Context) error {
	// kine stops when this context ends; Stop owns it, not the caller.
	kineCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	k.cancel = cancel
	k.wait = &sync.WaitGroup{}
	_, backend, err := drivers.New(kineCtx, k.wait, &drivers.Config{
		Endpoint: k.DSN,
		// kine as a library has no defaults of its own: these are its CLI's.
		ConnectionPoolConfig: generic.ConnectionPoolConfig{MaxIdle: 20, MaxIdleTime: 2 * time.Minute},
		CompactTimeout:       5 * time.Second,
		CompactMinRetain:     1000,
		CompactBatchSize:     1000,
		PollBatchSize:        500,
		PollInterval:         time.Second,
	})
	if err != nil {
		cancel()
		return fmt.Errorf("open datastore: %w", err)
	}
	if err := backend.Start(kineCtx); err != nil {
		cancel()
		return fmt.Errorf("start kine: %w", err)
	}
	k.grpc = grpc.NewServer(
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 2 * time.Hour, Timeout: 20 * time.Second}),
		// The API server's own limits for etcd requests (1.5 MiB objects).
		grpc.MaxRecvMsgSize(maxRequestBytes),
		grpc.MaxSendMsgSize(math.MaxInt32),
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
	klog.InfoS("Datastore listening", "type", "sqlite", "endpoint", k.endpoints[0])
	return nil
}

// Ready is immediate: Listen returns once the database is open and the socket listens.
func (k *Kine) Ready(context.Context) error { return nil }

func (k *Kine) Endpoints() []string { return k.endpoints }

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
