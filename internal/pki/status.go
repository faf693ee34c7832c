package pki

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"k8s.io/client-go/util/cert"
)

// CertificateStatus is one certificate in the PKI directory.
type CertificateStatus struct {
	Name     string
	Subject  string
	Issuer   string
	NotAfter time.Time
	IsCA     bool
}

// Status lists every certificate in the given PKI directories (the
// cluster's and a node's), sorted by name; a node's are prefixed "node/".
func Status(cluster Files, nodes ...Files) ([]CertificateStatus, error) {
	paths, err := filepath.Glob(filepath.Join(cluster.Dir, "*.crt"))
	if err != nil {
		return nil, fmt.Errorf("list certificates: %w", err)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no certificates in %s (has the server started with this --data-dir?)", cluster.Dir)
	}
	for _, node := range nodes {
		nodePaths, _ := filepath.Glob(filepath.Join(node.Dir, "*.crt"))
		paths = append(paths, nodePaths...)
	}
	var statuses []CertificateStatus
	for _, path := range paths {
		certs, err := cert.CertsFromFile(path)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		c := certs[0]
		name := strings.TrimSuffix(filepath.Base(path), ".crt")
		if filepath.Dir(path) != filepath.Clean(cluster.Dir) {
			name = "node/" + name
		}
		statuses = append(statuses, CertificateStatus{
			Name:     name,
			Subject:  describe(c.Subject.CommonName, c.Subject.Organization),
			Issuer:   c.Issuer.CommonName,
			NotAfter: c.NotAfter,
			IsCA:     c.IsCA,
		})
	}
	slices.SortFunc(statuses, func(a, b CertificateStatus) int { return strings.Compare(a.Name, b.Name) })
	return statuses, nil
}

func describe(commonName string, organizations []string) string {
	subject := "CN=" + commonName
	for _, o := range organizations {
		subject += ",O=" + o
	}
	return subject
}
