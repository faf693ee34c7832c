// Package faults runs a cluster under injected faults (kill -9, network
// partitions, packet loss, a slow link, a full disk, a worker cut off)
// while concurrent clients work on a few objects through the API, then
// checks what the clients saw: the history must be linearizable and no
// acknowledged write may be lost (package history). `make faults` runs
// every shape for 10 minutes; `make test` runs a 2-minute slice.
package faults

import (
	"testing"

	"github.com/monokube/monokube/test/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }
