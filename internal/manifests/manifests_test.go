package manifests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestScanStacks(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "CoreDNS.yaml"), "a: 1\n")
	write(t, filepath.Join(dir, "off.yaml.skip"), "a: 1\n")
	write(t, filepath.Join(dir, ".edit.yaml.swp"), "a: 1\n")
	write(t, filepath.Join(dir, "notes.txt"), "a: 1\n")
	write(t, filepath.Join(dir, "app", "b.yml"), "b: 1\n")
	write(t, filepath.Join(dir, "app", "sub", "a.json"), "{}\n")
	write(t, filepath.Join(dir, "empty", "README"), "x\n")
	stacks, err := Scan(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range stacks {
		got = append(got, s.Name+"="+strings.Join(s.Files, ","))
	}
	want := "coredns=CoreDNS.yaml app=app/b.yml,app/sub/a.json"
	if strings.Join(got, " ") != want {
		t.Fatalf("stacks = %q, want %q", strings.Join(got, " "), want)
	}
	before := stacks[0].Checksum
	write(t, filepath.Join(dir, "CoreDNS.yaml"), "a: 2\n")
	stacks, _ = Scan(dir)
	if stacks[0].Checksum == before {
		t.Fatal("checksum did not change with the content")
	}
	write(t, filepath.Join(dir, "coredns.json"), "{}")
	if _, err := Scan(dir); err == nil || !strings.Contains(err.Error(), `stack "coredns"`) {
		t.Fatalf("two files naming one stack: err = %v", err)
	}
}

func TestDecodeNamesFileAndLine(t *testing.T) {
	good := "# comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: s}\n"
	objects, err := Decode("f.yaml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if len(objects) != 2 || objects[0].GetKind() != "ConfigMap" || objects[1].GetKind() != "Secret" || objects[0].Source != "f.yaml:3" {
		t.Fatalf("decoded %d objects: %+v", len(objects), objects)
	}
	for text, want := range map[string]string{
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n   bad: [\n": "f.yaml:10",
		"kind: ConfigMap\nmetadata:\n  name: a\n":                                "no apiVersion",
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  generateName: a\n":        "no metadata.name",
		"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n- a\n- b\n": "f.yaml:6",
	} {
		_, err := Decode("f.yaml", []byte(text))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Decode(%q) error = %v, want it to contain %q", text, err, want)
		}
	}
}
