// Package metricsserver pins sigs.k8s.io/metrics-server, which our build
// compiles (its own main, unchanged) into the image monokube.io/metrics-server.
// A module of its own: metrics-server pins Kubernetes libraries of another
// version than ours.
package metricsserver
