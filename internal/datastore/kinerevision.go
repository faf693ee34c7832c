package datastore

import (
	"context"
	"sync/atomic"
	"time"

	kineserver "github.com/k3s-io/kine/pkg/server"
)

// polledRevision corrects kine's current revision when other kine
// instances write to the same database (several servers on PostgreSQL or
// MySQL). kine caches the revision at start and its poll loop only moves
// the cache forward with an exact compare-and-swap (kine v0.17.5,
// pkg/logstructured/sqllog/sql.go), so when another server writes between
// the two reads at start the cache stays behind for good. kine's watch
// progress notifications carry that stale revision, and the API server's
// watch cache never becomes fresh: consistent reads and watch-lists of
// quiet resources hang, and the server's start-up hooks time out. The
// revisions the poll loop delivers are the database's real progress, so
// CurrentRevision reports the higher of the two.
type polledRevision struct {
	kineserver.Backend
	polled atomic.Int64
}

func (p *polledRevision) CurrentRevision(ctx context.Context) (int64, error) {
	rev, err := p.Backend.CurrentRevision(ctx)
	if polled := p.polled.Load(); polled > rev {
		return polled, nil
	}
	return rev, err
}

// follow records the poll loop's revision until ctx ends. kine drops a
// subscriber that falls behind, so a closed channel means subscribe again.
func (p *polledRevision) follow(ctx context.Context) {
	for ctx.Err() == nil {
		watch := p.Backend.Watch(ctx, 0)
		p.advance(watch.CurrentRevision)
		for batch := range watch.Eventc {
			p.advance(batch.CurrentRev)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (p *polledRevision) advance(rev int64) {
	for {
		current := p.polled.Load()
		if rev <= current || p.polled.CompareAndSwap(current, rev) {
			return
		}
	}
}
