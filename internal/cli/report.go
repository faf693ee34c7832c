package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// printReport writes a check's rows as JSON (-o json) or one aligned line
// each (-o text; line separates columns with tabs).
func printReport[T any](out io.Writer, format string, rows []T, line func(T) string) error {
	switch format {
	case "json":
		raw, err := json.MarshalIndent(rows, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(out, string(raw))
		return err
	case "text":
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		for _, row := range rows {
			fmt.Fprintln(w, line(row))
		}
		return w.Flush()
	default:
		return fmt.Errorf("-o must be text or json, got %q", format)
	}
}
