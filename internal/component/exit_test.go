package component

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"k8s.io/klog/v2"
)

// An upstream exit during a requested stop ends only its own goroutine.
func TestUpstreamExitWhileStoppingEndsOnlyItsGoroutine(t *testing.T) {
	stopping.Store(true)
	defer stopping.Store(false)
	ended, continued := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		klog.FlushAndExit(time.Millisecond, 1)
		close(continued)
	}()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the goroutine did not end")
	}
	select {
	case <-continued:
		t.Fatal("code after FlushAndExit ran")
	default:
	}
}

func TestComponentOfNamesTheInnermostKnownFrame(t *testing.T) {
	for _, c := range []struct {
		frames []string
		name   string
		code   int
	}{
		{[]string{"k8s.io/klog/v2.(*loggingT).output", "k8s.io/kubernetes/pkg/volume/csi.(*csiPlugin).Init.func1", "k8s.io/kubernetes/pkg/kubelet.NewMainKubelet"}, "kubelet", 13},
		{[]string{"k8s.io/klog/v2.FlushAndExit", "k8s.io/kubernetes/pkg/scheduler/backend/cache.(*cacheImpl).UpdatePod", "k8s.io/client-go/tools/cache.(*processorListener).run"}, "scheduler", 12},
		{[]string{"github.com/sirupsen/logrus.(*Logger).Exit", "github.com/k3s-io/kine/pkg/drivers/generic.(*Tx).MustCommit", "github.com/monokube/monokube/internal/datastore.(*Kine).Start"}, "datastore", 16},
		{[]string{"github.com/sirupsen/logrus.(*Entry).Fatal", "github.com/containerd/containerd/v2/plugins/cri.initCRIService.func1"}, "containerd", 15},
		{[]string{"main.main"}, "unknown", 0},
	} {
		if name, code := componentOf(c.frames); name != c.name || code != c.code {
			t.Errorf("componentOf(%v) = %s %d, want %s %d", c.frames[1:], name, code, c.name, c.code)
		}
	}
}

// A fatal exit outside a stop ends the process with a line that names the
// component; both klog and logrus (containerd, kine) go through it.
func TestFatalExitNamesTheComponent(t *testing.T) {
	if how := os.Getenv("MONOKUBE_FATAL_HELPER"); how != "" {
		if how == "logrus" {
			logrus.Fatal("datastore on fire")
		}
		klog.Fatal("controller on fire")
		return
	}
	for how, want := range map[string]int{"klog": 255, "logrus": 1} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestFatalExitNamesTheComponent$")
		cmd.Env = append(os.Environ(), "MONOKUBE_FATAL_HELPER="+how)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != want {
			t.Errorf("%s: exit %v, want code %d\n%s", how, err, want, out)
		}
		if !strings.Contains(string(out), `"An embedded component ended the process; the line before this one says why" component="unknown"`) {
			t.Errorf("%s: no line naming the component:\n%s", how, out)
		}
	}
}
