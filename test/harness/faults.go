package harness

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"
)

// KillPlan is how many starts a kill -9 test interrupts
// (MONOKUBE_KILL_STARTS, default 5) and the random source of the moments,
// seeded from MONOKUBE_KILL_SEED to replay a run, or from the clock (logged).
func KillPlan(t testing.TB) (int, *rand.Rand) {
	kills := 5
	if n, err := strconv.Atoi(os.Getenv("MONOKUBE_KILL_STARTS")); err == nil {
		kills = n
	}
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("MONOKUBE_KILL_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("kill -9 plan: %d starts, MONOKUBE_KILL_SEED=%d", kills, seed)
	return kills, rand.New(rand.NewPCG(seed, 0))
}
