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

// Status lists every certificate in the PKI directory, sorted by name.
func Status(files Files) ([]CertificateStatus, error) {
	paths, err := filepath.Glob(filepath.Join(files.Dir, "*.crt"))
	if err != nil {
		return nil, fmt.Errorf("list certificates: %w", err)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no certificates in %s (has the server started with this --data-dir?)", files.Dir)
	}
	var statuses []CertificateStatus
	for _, path := range paths {
		certs, err := cert.CertsFromFile(path)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		c := certs[0]
		statuses = append(statuses, CertificateStatus{
			Name:     strings.TrimSuffix(filepath.Base(path), ".crt"),
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
