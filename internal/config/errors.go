package config

import (
	"fmt"
	"strings"
)

// FieldError is one problem with one field of a config file.
type FieldError struct {
	// Path is the field's path in the document, like "spec.api.port".
	Path string
	// Line is the 1-based line of the field in the file; 0 when the value
	// came from a default or a flag rather than the file.
	Line    int
	Message string
}

func (e FieldError) String() string {
	return fmt.Sprintf("%s: %s", e.Path, e.Message)
}

// InvalidError lists every problem found in one config, so a user can fix
// them all in one go.
type InvalidError struct {
	File   string
	Fields []FieldError
}

func (e *InvalidError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid config %s: %d error(s)", e.fileName(), len(e.Fields))
	for _, f := range e.Fields {
		b.WriteString("\n  ")
		if f.Line > 0 {
			fmt.Fprintf(&b, "%s:%d: ", e.fileName(), f.Line)
		}
		b.WriteString(f.String())
	}
	return b.String()
}

func (e *InvalidError) fileName() string {
	if e.File == "" {
		return "(defaults and flags)"
	}
	return e.File
}
