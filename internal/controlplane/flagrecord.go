package controlplane

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sync"
)

// FlagRecord keeps the flags each control-plane component started with in
// one JSON file ({"apiserver": {"flag": "value"}, ...}): an in-process
// distribution has no process command lines for a benchmark tool to read,
// so `monokube check cis` reads this. It holds file names, never keys.
type FlagRecord struct {
	Path string

	mu    sync.Mutex
	flags map[string]Args
}

// Record stores one component's flags and rewrites the file. A nil record
// records nothing.
func (r *FlagRecord) Record(component string, args Args) error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.flags == nil {
		r.flags = map[string]Args{}
	}
	r.flags[component] = maps.Clone(args)
	out, err := json.MarshalIndent(r.flags, "", "  ")
	if err != nil {
		return fmt.Errorf("encode component flags: %w", err)
	}
	// <data-dir>/run exists only where kine made its socket there.
	if err := os.MkdirAll(filepath.Dir(r.Path), 0o700); err != nil {
		return fmt.Errorf("record component flags: %w", err)
	}
	next := r.Path + ".new"
	if err := os.WriteFile(next, out, 0o600); err != nil {
		return fmt.Errorf("record component flags: %w", err)
	}
	if err := os.Rename(next, r.Path); err != nil {
		return fmt.Errorf("record component flags: %w", err)
	}
	return nil
}

// ReadFlagRecord reads what a running server recorded.
func ReadFlagRecord(path string) (map[string]Args, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var flags map[string]Args
	if err := json.Unmarshal(raw, &flags); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return flags, nil
}
