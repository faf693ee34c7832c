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

// Status lists every certificate in the given PKI directories, sorted by
// name: the cluster's first (a worker has none), then a node's, whose names
// are prefixed "node/". Certificates the kubelet or a rotation manager
// keeps ("<name>-current.pem") are listed under <name>.
func Status(cluster Files, nodes ...Files) ([]CertificateStatus, error) {
	var statuses []CertificateStatus
	for i, dir := range append([]Files{cluster}, nodes...) {
		crts, _ := filepath.Glob(filepath.Join(dir.Dir, "*.crt"))
		pems, _ := filepath.Glob(filepath.Join(dir.Dir, "*-current.pem"))
		for _, path := range append(crts, pems...) {
			base := filepath.Base(path)
			if strings.HasSuffix(base, "-chain.crt") {
				continue // the serving certificate again, with the CA
			}
			certs, err := cert.CertsFromFile(path)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", path, err)
			}
			c := certs[0]
			name := strings.TrimSuffix(strings.TrimSuffix(base, ".crt"), "-current.pem")
			if i > 0 {
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
	}
	if len(statuses) == 0 {
		return nil, fmt.Errorf("no certificates in %s (has monokube started with this --data-dir?)", cluster.Dir)
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
