package component

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"
)

// Upstream components in this process register metrics with Prometheus's
// default registry, and two of them register the same gRPC server
// metrics: embedded etcd (which tolerates a duplicate) and containerd
// (which panics on one, prometheus.MustRegister). A duplicate is harmless
// here, since nothing serves the default registry, so it is logged and
// ignored instead of ending the process.
func init() {
	prometheus.DefaultRegisterer = tolerantRegisterer{prometheus.DefaultRegisterer}
}

type tolerantRegisterer struct{ prometheus.Registerer }

func (r tolerantRegisterer) MustRegister(collectors ...prometheus.Collector) {
	for _, c := range collectors {
		err := r.Register(c)
		var duplicate prometheus.AlreadyRegisteredError
		switch {
		case err == nil:
		case errors.As(err, &duplicate):
			klog.V(2).InfoS("Ignoring a duplicate metrics registration", "err", err)
		default:
			panic(err)
		}
	}
}
