package manifests

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// Object is one manifest object and where it came from, for messages.
type Object struct {
	*unstructured.Unstructured
	// Source is "file:line" of the document's first line.
	Source string
}

// document is one YAML document of a file and the line it starts on.
type document struct {
	text string
	line int
}

// splitDocuments cuts a YAML stream at its "---" lines.
func splitDocuments(raw []byte) []document {
	var docs []document
	var current strings.Builder
	start, line := 1, 0
	scanner := bufio.NewScanner(bytes.NewReader(raw))
	scanner.Buffer(make([]byte, 0, 64*1024), len(raw)+1)
	for scanner.Scan() {
		line++
		text := scanner.Text()
		if text == "---" || strings.HasPrefix(text, "--- ") {
			docs = append(docs, document{text: current.String(), line: start})
			current.Reset()
			start = line + 1
			continue
		}
		current.WriteString(text)
		current.WriteByte('\n')
	}
	return append(docs, document{text: current.String(), line: start})
}

var yamlLine = regexp.MustCompile(`line (\d+)`)

// atLine rewrites a YAML parser's document-relative "line N" into the
// file's line, so the message points where the user must look.
func atLine(err error, file string, doc document) error {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatchIndex(msg); m != nil {
		n, _ := strconv.Atoi(msg[m[2]:m[3]])
		line := doc.line + n - 1
		return fmt.Errorf("%s:%d: %s", file, line, strings.TrimSpace(msg[:m[0]]+msg[m[1]:]))
	}
	return fmt.Errorf("%s:%d: %s", file, doc.line, msg)
}

// Decode parses a manifest file (YAML documents, or JSON) into objects.
// List kinds are flattened. Errors name the file and line.
func Decode(file string, raw []byte) ([]Object, error) {
	var objects []Object
	for _, doc := range splitDocuments(raw) {
		if strings.TrimSpace(stripComments(doc.text)) == "" {
			continue
		}
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc.text), &obj); err != nil {
			return nil, atLine(err, file, doc)
		}
		if obj == nil {
			continue
		}
		u := &unstructured.Unstructured{Object: obj}
		source := fmt.Sprintf("%s:%d", file, doc.line)
		if u.IsList() {
			list, err := u.ToList()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", source, err)
			}
			for i := range list.Items {
				objects = append(objects, Object{Unstructured: &list.Items[i], Source: source})
			}
			continue
		}
		if err := check(u); err != nil {
			return nil, fmt.Errorf("%s: %w", source, err)
		}
		objects = append(objects, Object{Unstructured: u, Source: source})
	}
	return objects, nil
}

// check catches what the API server would reject with a vaguer message.
func check(u *unstructured.Unstructured) error {
	switch {
	case u.GetAPIVersion() == "":
		return fmt.Errorf("object has no apiVersion")
	case u.GetKind() == "":
		return fmt.Errorf("object has no kind")
	case u.GetName() == "":
		return fmt.Errorf("%s has no metadata.name (generateName cannot be applied)", u.GetKind())
	}
	return nil
}

func stripComments(text string) string {
	var b strings.Builder
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line)
			b.WriteByte('\n')
		}
	}
	return b.String()
}
