package scale

import (
	"context"
	"testing"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/monokube/monokube/test/harness"
)

// RunAgainst runs the load against a started harness server whose
// datastore files are in datastoreDir; the simulated nodes and the pod
// watch stop when the test ends, before the server does.
func RunAgainst(t *testing.T, server *harness.Server, datastoreDir string, opts Options) Report {
	t.Helper()
	config, err := clientcmd.BuildConfigFromFlags("", server.AdminKubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	report, err := Run(ctx, Target{Config: config, PID: server.PID(), DatastoreDir: datastoreDir}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return report
}
