package controlplane

import (
	"context"
	"fmt"
	"io"

	"golang.org/x/sys/unix"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apiserver/pkg/admission"
)

// diskGuardPlugin is the admission plugin that refuses API writes while
// the local datastore's disk is nearly full.
const diskGuardPlugin = "MonokubeDatastoreSpace"

// DefaultDatastoreReserve is the free space below which writes are refused.
const DefaultDatastoreReserve = 128 << 20

// diskGuard refuses creates and updates (deletes go through, to free
// space) while the file system holding the datastore has less than reserve
// bytes free. Why: once SQLite meets a full disk, kine has been seen to
// acknowledge writes it never committed (the apiserver answers 201 and a
// read then finds nothing; test/integration TestDatastoreDiskFull...). A
// clear refusal before the disk is full loses nothing. It checks on every
// write, a statfs of well under a microsecond, so no polling window exists
// for API writes; another process filling the disk can still beat it.
type diskGuard struct {
	*admission.Handler
	dir     string
	reserve uint64
}

var _ admission.ValidationInterface = (*diskGuard)(nil)

func registerDiskGuard(plugins *admission.Plugins, dir string, reserve uint64) {
	plugins.Register(diskGuardPlugin, func(io.Reader) (admission.Interface, error) {
		return &diskGuard{Handler: admission.NewHandler(admission.Create, admission.Update), dir: dir, reserve: reserve}, nil
	})
}

func (g *diskGuard) Validate(_ context.Context, attrs admission.Attributes, _ admission.ObjectInterfaces) error {
	if storesNothing(attrs) {
		return nil
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(g.dir, &fs); err != nil {
		return nil // cannot tell: the datastore reports its own errors
	}
	free := fs.Bavail * uint64(fs.Bsize)
	if free >= g.reserve {
		return nil
	}
	return apierrors.NewServiceUnavailable(fmt.Sprintf(
		"the datastore's disk is full: %s has %d MiB free, below the %d MiB monokube keeps in reserve; "+
			"writes are refused until space is freed, so none is lost (deletes still work)",
		g.dir, free>>20, g.reserve>>20))
}

// storesNothing says whether a write leaves the datastore as it was: a dry
// run, a service-account token, an access or token review. Refusing those
// on a full disk stopped the server itself: its controller-manager, unable
// to get its controllers' tokens, exits (seen in the faults suite).
func storesNothing(attrs admission.Attributes) bool {
	if attrs.IsDryRun() {
		return true
	}
	switch attrs.GetResource().Group {
	case "authentication.k8s.io", "authorization.k8s.io":
		return true
	}
	return attrs.GetResource().Resource == "serviceaccounts" && attrs.GetSubresource() == "token"
}
