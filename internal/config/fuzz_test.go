package config

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// FuzzParse feeds the config loader arbitrary files: it must never panic,
// refuse with an error (a field error when it says "invalid"), or return a
// config that validates and survives a round trip through YAML.
func FuzzParse(f *testing.F) {
	defaults, _ := yaml.Marshal(Default())
	for _, seed := range []string{
		string(defaults),
		"apiVersion: monokube.io/v1beta1\nkind: ClusterConfig\nspec:\n  network:\n    podCIDR: 10.43.0.0/16\n",
		"spec:\n  api:\n    port: 70000\n    sans: [\"*.x\", 1.2.3.4]\n",
		"spec:\n  worker:\n    cgroupRoot: ../..\n    labels: [a=b, =]\n    taints: [k=v:NoSchedule, bad]\n",
		"spec: [1, 2]\n", "---\n---\n", "&a [*a]", "spec:\n  api:\n    extraArgs: {\"-x\": 1}\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		// A hang is a finding too; the fuzzer only sees crashes.
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				panic(fmt.Sprintf("Parse took over 5 s on %q", raw))
			}
		}()
		cfg, err := Parse(raw)
		if err != nil {
			var invalid *InvalidError
			if errors.As(err, &invalid) && len(invalid.Fields) == 0 {
				t.Fatalf("an invalid config with no field named: %v", err)
			}
			return
		}
		if invalid := Validate(cfg, nil); invalid != nil {
			t.Fatalf("Parse accepted a config Validate refuses: %v", invalid)
		}
		again, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatalf("marshal an accepted config: %v", err)
		}
		if _, err := Parse(again); err != nil {
			t.Fatalf("an accepted config does not parse again after marshalling: %v\n%s", err, again)
		}
	})
}
