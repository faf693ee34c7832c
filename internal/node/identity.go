package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/monokube/monokube/internal/config"
	"github.com/monokube/monokube/internal/datadir"
)

// Identity is who a node is and where its cgroups go, resolved once from
// spec.worker (server --enable-worker) or the same flags (worker).
type Identity struct {
	Name       string
	CgroupRoot string
	// Labels and Taints the Node registers with.
	Labels map[string]string
	Taints []corev1.Taint
}

// NewIdentity fills the defaults of node settings that passed
// spec.Problems (config.Validate or the command's flags did that): the name
// is the lower-cased hostname unless given.
func NewIdentity(spec config.WorkerSpec) (Identity, error) {
	id := Identity{Name: spec.NodeName, CgroupRoot: spec.CgroupRoot}
	if id.Name == "" {
		hostname, err := os.Hostname()
		if err != nil {
			return Identity{}, fmt.Errorf("hostname: %w", err)
		}
		id.Name = strings.ToLower(hostname)
	}
	var err error
	if id.Labels, err = config.ParseNodeLabels(spec.Labels); err != nil {
		return Identity{}, err
	}
	if id.Taints, err = config.ParseNodeTaints(spec.Taints); err != nil {
		return Identity{}, err
	}
	return id, nil
}

// Record is what a node writes into its data dir for later commands:
// `reset` removes the cgroups below the root the node really used.
type Record struct {
	NodeName   string `json:"nodeName"`
	CgroupRoot string `json:"cgroupRoot"`
}

func (id Identity) record(layout datadir.Layout) error {
	raw, err := json.MarshalIndent(Record{NodeName: id.Name, CgroupRoot: id.CgroupRoot}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(layout.AgentDir(), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", layout.AgentDir(), err)
	}
	if err := os.WriteFile(layout.NodeRecordFile(), raw, 0o600); err != nil {
		return fmt.Errorf("record node settings: %w", err)
	}
	return nil
}

// LoadRecord reads what the node in layout recorded; ok is false when no
// node ever ran there.
func LoadRecord(layout datadir.Layout) (record Record, ok bool, err error) {
	raw, err := os.ReadFile(layout.NodeRecordFile())
	if errors.Is(err, os.ErrNotExist) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("read node record: %w", err)
	}
	if err := json.Unmarshal(raw, &record); err != nil {
		return Record{}, false, fmt.Errorf("%s: %w", layout.NodeRecordFile(), err)
	}
	return record, true, nil
}
