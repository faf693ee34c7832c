package component

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func stateNames(states []State) []string {
	var out []string
	for _, s := range states {
		out = append(out, s.Name+"="+s.State)
	}
	return out
}

func TestStatesFollowTheLifecycle(t *testing.T) {
	ev := &events{}
	broken := errors.New("disk gone")
	m := NewManager(&fake{name: "a", events: ev}, &fake{name: "b", events: ev, readyErr: broken}, &fake{name: "c", events: ev})
	var seen [][]string
	m.OnChange = func(states []State) { seen = append(seen, stateNames(states)) }
	if got := stateNames(m.States()); !slices.Equal(got, []string{"a=waiting", "b=waiting", "c=waiting"}) {
		t.Fatalf("before start: %v", got)
	}
	if err := m.Start(context.Background()); err == nil {
		t.Fatal("b's Ready error was not returned")
	}
	final := m.States()
	if got := stateNames(final); !slices.Equal(got, []string{"a=stopped", "b=stopped", "c=waiting"}) {
		t.Errorf("after the failed start: %v", got)
	}
	if final[1].Error != broken.Error() {
		t.Errorf("b's failure is not kept through its stop: %+v", final[1])
	}
	if len(seen) == 0 || !slices.Equal(seen[0], []string{"a=starting", "b=waiting", "c=waiting"}) {
		t.Errorf("first change: %v", seen)
	}
}

func TestStatesFileIsReadOnlyForItsProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "components.json")
	StatesFile(path)([]State{{Name: "kubelet", State: Ready}})
	states, err := ReadStates(path, os.Getpid())
	if err != nil || len(states) != 1 || states[0].State != Ready {
		t.Fatalf("own states: %v, %v", states, err)
	}
	if _, err := ReadStates(path, os.Getpid()+1); err == nil {
		t.Error("states of another process were accepted")
	}
}
