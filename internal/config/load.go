package config

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/yaml"
)

// Load reads the config file at path over the defaults, then validates it.
// An InvalidError names every bad field with its line in the file.
func Load(path string) (*ClusterConfig, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(raw)
	if invalid, ok := err.(*InvalidError); ok {
		invalid.File = path
		return nil, invalid
	}
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Lines maps a field path ("spec.api.port") to its line in the source file.
type Lines map[string]int

// Parse decodes a ClusterConfig document over the defaults and validates
// it. Unknown fields, values of the wrong type and invalid values are all
// reported together in one *InvalidError, each with its path and line.
func Parse(raw []byte) (*ClusterConfig, error) {
	cfg := Default()
	lines, problems, err := Decode(raw, cfg)
	if err != nil {
		return nil, err
	}
	if len(problems) > 0 && len(lines) == 0 {
		return nil, &InvalidError{Fields: problems}
	}
	// The DNS Service's default address follows the service range (an
	// IPv6-only cluster gets an IPv6 one).
	if _, written := lines["spec.network.clusterDNS"]; !written {
		if dns, ok := defaultClusterDNS(cfg.Spec.Network.ServiceCIDR); ok {
			cfg.Spec.Network.ClusterDNS = dns
		}
	}
	if invalid := Validate(cfg, lines); invalid != nil {
		problems = append(problems, invalid.Fields...)
	}
	if len(problems) > 0 {
		return nil, &InvalidError{Fields: problems}
	}
	return cfg, nil
}

// Decode reads a YAML document over out (a pointer to a struct with json
// tags), recording the line of every field. Unknown fields and values of
// the wrong type are returned as problems, not errors, so that the known
// fields can still be validated and every mistake reported in one pass; a
// document that does not decode at all is an error.
func Decode(raw []byte, out any) (Lines, []FieldError, error) {
	lines := Lines{}
	var doc yamlv3.Node
	if err := yamlv3.Unmarshal(raw, &doc); err != nil {
		return nil, nil, fmt.Errorf("not valid YAML: %w", err)
	}
	var problems []FieldError
	if len(doc.Content) == 0 {
		return lines, nil, nil
	}
	walk(doc.Content[0], reflect.TypeOf(out).Elem(), "", lines, &problems)
	// Unknown fields are skipped by this decode.
	if err := yaml.Unmarshal(bytes.TrimSpace(raw), out); err != nil {
		if len(problems) > 0 {
			return nil, problems, nil
		}
		return nil, nil, fmt.Errorf("decode: %w", err)
	}
	return lines, problems, nil
}

// walk checks node against the Go type t, recording the line of every field
// and collecting unknown fields and kind mismatches.
func walk(node *yamlv3.Node, t reflect.Type, path string, lines Lines, problems *[]FieldError) {
	if path != "" {
		lines[path] = node.Line
	}
	if node.Kind == yamlv3.ScalarNode && node.Tag == "!!null" {
		return
	}
	mismatch := func(want string) {
		*problems = append(*problems, FieldError{Path: path, Line: node.Line, Message: fmt.Sprintf("must be %s, got %q", want, node.Value)})
	}
	switch t.Kind() {
	case reflect.Pointer:
		walk(node, t.Elem(), path, lines, problems)
	case reflect.Struct:
		if node.Kind != yamlv3.MappingNode {
			mismatch("a mapping")
			return
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(node.Content); i += 2 {
			key, value := node.Content[i], node.Content[i+1]
			child := join(path, key.Value)
			if repeated(seen, key, child, problems) {
				continue
			}
			field, ok := fieldByJSONName(t, key.Value)
			if !ok {
				*problems = append(*problems, FieldError{Path: child, Line: key.Line, Message: "unknown field" + suggest(t, key.Value)})
				continue
			}
			walk(value, field.Type, child, lines, problems)
		}
	case reflect.Map:
		if node.Kind != yamlv3.MappingNode {
			mismatch("a mapping")
			return
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(node.Content); i += 2 {
			key, value := node.Content[i], node.Content[i+1]
			if repeated(seen, key, join(path, key.Value), problems) {
				continue
			}
			walk(value, t.Elem(), join(path, key.Value), lines, problems)
		}
	case reflect.Slice:
		if node.Kind != yamlv3.SequenceNode {
			mismatch("a list")
			return
		}
		for i, item := range node.Content {
			walk(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), lines, problems)
		}
	case reflect.Int:
		if node.Kind != yamlv3.ScalarNode || node.Tag != "!!int" {
			mismatch("an integer")
		}
	case reflect.String:
		if node.Kind != yamlv3.ScalarNode {
			mismatch("a string")
		}
	case reflect.Bool:
		if node.Kind != yamlv3.ScalarNode || node.Tag != "!!bool" {
			mismatch("true or false")
		}
	}
}

// repeated reports a key given twice in one mapping. The decoder would keep
// the later one and drop the earlier without a word (a second "api:" under
// spec loses the address set in the first).
func repeated(seen map[string]int, key *yamlv3.Node, path string, problems *[]FieldError) bool {
	if first, ok := seen[key.Value]; ok {
		*problems = append(*problems, FieldError{Path: path, Line: key.Line, Message: fmt.Sprintf("given twice (first at line %d); write it once", first)})
		return true
	}
	seen[key.Value] = key.Line
	return false
}

func fieldByJSONName(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if strings.Split(f.Tag.Get("json"), ",")[0] == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// suggest names the known field that differs from name only in case, the
// most common typo ("podCidr").
func suggest(t reflect.Type, name string) string {
	var known []string
	for i := 0; i < t.NumField(); i++ {
		jsonName := strings.Split(t.Field(i).Tag.Get("json"), ",")[0]
		if strings.EqualFold(jsonName, name) {
			return fmt.Sprintf(" (did you mean %q?)", jsonName)
		}
		known = append(known, jsonName)
	}
	return " (known fields: " + strings.Join(known, ", ") + ")"
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
