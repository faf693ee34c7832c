package component

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Lifecycle states the Manager records for each component.
const (
	Waiting  = "waiting"
	Starting = "starting"
	Ready    = "ready"
	Failed   = "failed"
	Stopping = "stopping"
	Stopped  = "stopped"
)

// State is where one component is in its lifecycle, as `monokube status`
// shows it.
type State struct {
	Name  string    `json:"name"`
	State string    `json:"state"`
	Since time.Time `json:"since"`
	Error string    `json:"error,omitempty"`
}

// States is what a running process publishes: its PID, so a reader can
// tell the file of a process that ended from the live one's.
type States struct {
	PID        int     `json:"pid"`
	Components []State `json:"components"`
}

// StatesFile returns a Manager.OnChange that keeps path holding the
// states, replaced whole on each change so a reader never sees half.
func StatesFile(path string) func([]State) {
	return func(states []State) {
		raw, err := json.Marshal(States{PID: os.Getpid(), Components: states})
		if err != nil {
			return
		}
		tmp := path + ".tmp"
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return
		}
		if err := os.WriteFile(tmp, raw, 0o644); err == nil {
			_ = os.Rename(tmp, path)
		}
	}
}

// ReadStates reads a StatesFile, returning an error when it was written by
// a process other than pid (the one holding the data dir now).
func ReadStates(path string, pid int) ([]State, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var states States
	if err := json.Unmarshal(raw, &states); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if states.PID != pid {
		return nil, fmt.Errorf("%s was written by process %d, not the running %d", path, states.PID, pid)
	}
	return states.Components, nil
}
