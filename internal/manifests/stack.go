// Package manifests applies the server's manifests directory to the
// cluster: every *.yaml, *.yml and *.json file at its top level is a stack,
// and so is every subdirectory (all its files together). A stack is applied
// with server-side apply when it appears or changes, and what it created is
// deleted when it is removed (pruning by the stack label). The bundled
// add-ons are stacks written by the server, readable like any other.
package manifests

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Stack is one unit of apply and prune.
type Stack struct {
	// Name labels every object of the stack: the file name without its
	// extension, or the subdirectory's name.
	Name string
	// Files are the stack's manifest files, relative to the directory.
	Files []string
	// Checksum covers the files' names and contents: a stack is applied
	// again only when it changes.
	Checksum string
}

// manifestFile reports whether a file is applied: a .skip suffix (or any
// other) and hidden files, such as an editor's, are left alone.
func manifestFile(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	switch filepath.Ext(name) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

var invalidNameChars = regexp.MustCompile(`[^a-z0-9-]+`)

// stackName turns a file or directory name into a label value and a part
// of an object name.
func stackName(base string) string {
	name := strings.ToLower(strings.TrimSuffix(base, filepath.Ext(base)))
	name = strings.Trim(invalidNameChars.ReplaceAllString(name, "-"), "-")
	if len(name) > 50 {
		name = strings.TrimRight(name[:50], "-")
	}
	return name
}

// Scan reads the directory's stacks. A missing directory has none.
func Scan(dir string) ([]Stack, error) {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read manifests directory: %w", err)
	}
	var stacks []Stack
	seen := map[string]string{}
	for _, entry := range entries {
		var files []string
		switch {
		case strings.HasPrefix(entry.Name(), "."):
			continue
		case entry.IsDir():
			files, err = filesBelow(dir, entry.Name())
			if err != nil {
				return nil, err
			}
		case manifestFile(entry.Name()):
			files = []string{entry.Name()}
		}
		if len(files) == 0 {
			continue
		}
		name := stackName(entry.Name())
		if name == "" {
			return nil, fmt.Errorf("%s: cannot name a stack after it; use letters or digits", filepath.Join(dir, entry.Name()))
		}
		if other, taken := seen[name]; taken {
			return nil, fmt.Errorf("%s and %s would both be stack %q; rename one", other, entry.Name(), name)
		}
		seen[name] = entry.Name()
		sum, err := checksum(dir, files)
		if err != nil {
			return nil, err
		}
		stacks = append(stacks, Stack{Name: name, Files: files, Checksum: sum})
	}
	return stacks, nil
}

// filesBelow lists a subdirectory's manifest files, relative to dir, sorted.
func filesBelow(dir, sub string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(filepath.Join(dir, sub), func(path string, entry fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if entry.IsDir() && strings.HasPrefix(entry.Name(), ".") {
			return filepath.SkipDir
		}
		if !entry.IsDir() && manifestFile(entry.Name()) {
			rel, err := filepath.Rel(dir, path)
			if err != nil {
				return err
			}
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read manifests in %s: %w", sub, err)
	}
	slices.Sort(files)
	return files, nil
}

func checksum(dir string, files []string) (string, error) {
	hash := sha256.New()
	for _, file := range files {
		raw, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			return "", fmt.Errorf("read manifest: %w", err)
		}
		fmt.Fprintf(hash, "%s\x00%d\x00", file, len(raw))
		hash.Write(raw)
	}
	return hex.EncodeToString(hash.Sum(nil))[:32], nil
}
