package component

import (
	"context"
	"errors"
	"os"
	"runtime"
	"strings"
	"sync/atomic"

	"github.com/sirupsen/logrus"
	"k8s.io/klog/v2"
)

// stopping is set once the process has been asked to stop.
var stopping atomic.Bool

// Some upstream code ends the whole process (klog.Fatal, klog.FlushAndExit,
// logrus.Fatal in containerd and kine). Two things are done about it here:
//
//   - During a requested stop such an exit would turn a clean shutdown into
//     a failure (the namespace controller exits 1 if it cannot list
//     resources), so it ends only the goroutine that asked.
//   - Otherwise the process exits as upstream intends, but with the exit
//     code of the component that asked and one log line naming it, so a
//     supervisor restarts it and the operator knows why (fatal-exits.md).
func init() {
	klog.OsExit = fatalExit
	logrus.StandardLogger().ExitFunc = fatalExit
}

func fatalExit(code int) {
	// Code 2 is klog failing to write its own files, with its lock held:
	// logging here would deadlock, so it always exits at once.
	if code == 2 {
		os.Exit(code)
	}
	if stopping.Load() {
		klog.InfoS("An embedded component asked to exit while stopping; ending only its goroutine", "code", code)
		runtime.Goexit()
	}
	name, exitCode := componentOf(callers())
	if exitCode == 0 {
		exitCode = code
	}
	klog.ErrorS(nil, "An embedded component ended the process; the line before this one says why", "component", name, "exitCode", exitCode, "upstreamExitCode", code)
	klog.Flush()
	os.Exit(exitCode)
}

// ExitCodes are the exit codes of fatal exits by embedded components, by
// the package that asked (the innermost matching frame wins). A code not
// listed (an unknown caller) stays upstream's.
var ExitCodes = []struct {
	Prefix    string
	Component string
	Code      int
}{
	{"k8s.io/kubernetes/pkg/volume/csi.", "kubelet", 13}, // the kubelet's CSINode initialisation
	{"k8s.io/kubernetes/pkg/kubelet", "kubelet", 13},
	{"k8s.io/kubernetes/cmd/kubelet", "kubelet", 13},
	{"k8s.io/kubernetes/pkg/proxy", "kube-proxy", 14},
	{"k8s.io/kubernetes/cmd/kube-proxy", "kube-proxy", 14},
	{"k8s.io/kubernetes/pkg/scheduler", "scheduler", 12},
	{"k8s.io/kubernetes/cmd/kube-scheduler", "scheduler", 12},
	{"k8s.io/kubernetes/pkg/controller", "controller-manager", 11},
	{"k8s.io/kubernetes/cmd/kube-controller-manager", "controller-manager", 11},
	{"k8s.io/controller-manager", "controller-manager", 11},
	{"k8s.io/kubernetes/pkg/controlplane", "apiserver", 10},
	{"k8s.io/kubernetes/pkg/registry", "apiserver", 10},
	{"k8s.io/kubernetes/cmd/kube-apiserver", "apiserver", 10},
	{"k8s.io/apiserver", "apiserver", 10},
	{"k8s.io/kube-aggregator", "apiserver", 10},
	{"k8s.io/apiextensions-apiserver", "apiserver", 10},
	{"github.com/containerd/containerd", "containerd", 15},
	{"github.com/k3s-io/kine", "datastore", 16},
	{"github.com/flannel-io/flannel", "flannel", 17},
	{"github.com/cloudnativelabs/kube-router", "network-policy", 18},
}

// componentOf names the component whose frame is innermost in the stack
// (frames are function names, innermost first).
func componentOf(frames []string) (string, int) {
	for _, frame := range frames {
		for _, entry := range ExitCodes {
			if strings.HasPrefix(frame, entry.Prefix) {
				return entry.Component, entry.Code
			}
		}
	}
	return "unknown", 0
}

// callers are the function names of the calling goroutine's stack.
func callers() []string {
	pcs := make([]uintptr, 64)
	n := runtime.Callers(3, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	var names []string
	for {
		frame, more := frames.Next()
		names = append(names, frame.Function)
		if !more {
			return names
		}
	}
}

// markStoppingWhenDone sets stopping as soon as ctx (the process's signal
// context) ends, before the components see it.
func markStoppingWhenDone(ctx context.Context) {
	context.AfterFunc(ctx, func() { stopping.Store(true) })
}

// ErrRestart ends a component's task when what it changed is read by
// upstream code only at start: the Manager stops every component as on a
// signal, and the command starts the process again (see the cli package).
var ErrRestart = errors.New("restart requested")
