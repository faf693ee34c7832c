// Package version reports what this binary is and which Kubernetes it embeds.
package version

import (
	"fmt"
	"runtime"

	k8sversion "k8s.io/component-base/version"
)

// Version is monokube's own version, set by the build (-ldflags -X).
var Version = "v0.0.0-dev"

// Kubernetes is the version of the embedded Kubernetes components, as the
// build stamped it into component-base.
func Kubernetes() string { return k8sversion.Get().GitVersion }

// String is the one-line summary `monokube version` prints.
func String() string {
	return fmt.Sprintf("monokube %s (kubernetes %s, %s, %s/%s)", Version, Kubernetes(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
