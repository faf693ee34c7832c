package controlplane

import (
	"context"
	"fmt"
	"strconv"
	"time"

	schedulerapp "k8s.io/kubernetes/cmd/kube-scheduler/app"
	scheduleroptions "k8s.io/kubernetes/cmd/kube-scheduler/app/options"

	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/pki"
)

// Scheduler runs kube-scheduler in-process.
type Scheduler struct {
	PKI pki.Files
	// Port is the scheduler's health and metrics port on 127.0.0.1; 0 turns it off.
	Port int
	// LeaderElect is on when several servers may run: one acts at a time.
	LeaderElect bool
	ExtraArgs   Args
	// Flags, when set, records the flags it starts with.
	Flags *FlagRecord

	component.Task
}

var _ component.Component = (*Scheduler)(nil)
var _ component.Exiter = (*Scheduler)(nil)

func (s *Scheduler) Name() string { return "scheduler" }

func (s *Scheduler) Init(context.Context) error { return nil }

func (s *Scheduler) args() Args {
	kubeconfig := s.PKI.Kubeconfig(pki.Scheduler)
	return merged(Args{
		"kubeconfig":                kubeconfig,
		"authentication-kubeconfig": kubeconfig,
		"authorization-kubeconfig":  kubeconfig,
		"bind-address":              "127.0.0.1",
		"secure-port":               strconv.Itoa(s.Port),
		"leader-elect":              strconv.FormatBool(s.LeaderElect),
		"profiling":                 "false",
		// Every binding is one API call: upstream's 50/s client limit
		// capped the scheduler at 52 pods/s (make scale, 100 nodes). The
		// API server is in the same process, on loopback.
		"kube-api-qps":   "200",
		"kube-api-burst": "400",
	}, s.ExtraArgs)
}

// Start uses the scheduler's options → Setup → Run path: its cobra command
// re-applies process-wide logging and calls os.Exit on errors.
func (s *Scheduler) Start(ctx context.Context) error {
	opts := scheduleroptions.NewOptions()
	args := s.args()
	if err := applyFlags(*opts.Flags, args, "spec.scheduler.extraArgs"); err != nil {
		return err
	}
	if err := s.Flags.Record(s.Name(), args); err != nil {
		return err
	}
	if err := opts.ComponentGlobalsRegistry.Set(); err != nil {
		return fmt.Errorf("feature gates: %w", err)
	}
	s.Go(ctx, func(ctx context.Context) error {
		completed, scheduler, err := schedulerapp.Setup(ctx, opts)
		if err != nil {
			return fmt.Errorf("setup: %w", err)
		}
		return schedulerapp.Run(ctx, completed, scheduler)
	})
	return nil
}

func (s *Scheduler) Ready(ctx context.Context) error {
	return waitHealthy(ctx, s.args()["secure-port"])
}

func (s *Scheduler) Stop() error { return s.Task.Stop(15 * time.Second) }

// EndsProcessWhenStopped: with leader election on, upstream's scheduler
// calls os.Exit(0) once its context ends (fatal-exits.md, S2), which would
// cut short the stop of everything after it, and a restart.
func (s *Scheduler) EndsProcessWhenStopped() bool { return s.LeaderElect }
