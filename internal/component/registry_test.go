package component

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestDuplicateMetricsRegistrationDoesNotPanic(t *testing.T) {
	first := prometheus.NewCounter(prometheus.CounterOpts{Name: "monokube_test_duplicate_total"})
	second := prometheus.NewCounter(prometheus.CounterOpts{Name: "monokube_test_duplicate_total"})
	prometheus.MustRegister(first)
	prometheus.MustRegister(second) // containerd after embedded etcd does this
	defer prometheus.Unregister(first)
	defer func() {
		if recover() == nil {
			t.Error("a conflicting (not duplicate) registration did not panic")
		}
	}()
	prometheus.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "monokube_test_duplicate_total", Help: "another"}))
}
