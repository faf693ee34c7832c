package backup

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/component"
)

// scheduledPrefix names scheduled archives, so pruning never touches
// backups a user made by hand into the same directory.
const scheduledPrefix = "scheduled"

// Schedule takes backups on a cron schedule into the snapshots dir and
// keeps the newest Retention of them, as k3s's etcd snapshots do.
type Schedule struct {
	Request   Request
	Cron      string
	Retention int

	component.Task
	schedule cron.Schedule
}

var _ component.Component = (*Schedule)(nil)

func (s *Schedule) Name() string { return "snapshots" }

func (s *Schedule) Init(context.Context) error {
	var err error
	if s.schedule, err = cron.ParseStandard(s.Cron); err != nil {
		return fmt.Errorf("spec.storage.snapshots.schedule: %w", err)
	}
	s.Request.Prefix = scheduledPrefix
	return nil
}

func (s *Schedule) Start(ctx context.Context) error {
	s.Go(ctx, func(ctx context.Context) error {
		for {
			next := s.schedule.Next(time.Now())
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Until(next)):
			}
			if _, err := Create(ctx, s.Request); err != nil {
				// A failed snapshot must not stop the server; the next one may work.
				klog.ErrorS(err, "Scheduled backup failed", "dir", s.Request.SaveDir)
				continue
			}
			if err := Prune(s.Request.SaveDir, s.Retention); err != nil {
				klog.ErrorS(err, "Pruning old scheduled backups failed")
			}
		}
	})
	klog.InfoS("Scheduled backups on", "schedule", s.Cron, "retention", s.Retention, "dir", s.Request.SaveDir)
	return nil
}

func (s *Schedule) Ready(context.Context) error { return nil }

func (s *Schedule) Stop() error { return s.Task.Stop(30 * time.Second) }

// Prune deletes all but the newest keep scheduled archives in dir; their
// names sort by time.
func Prune(dir string, keep int) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var scheduled []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), scheduledPrefix+"-") && strings.HasSuffix(e.Name(), ".tar.gz") {
			scheduled = append(scheduled, e.Name())
		}
	}
	slices.Sort(scheduled)
	for len(scheduled) > keep {
		if err := os.Remove(filepath.Join(dir, scheduled[0])); err != nil {
			return err
		}
		klog.InfoS("Deleted an old scheduled backup", "path", filepath.Join(dir, scheduled[0]))
		scheduled = scheduled[1:]
	}
	return nil
}
