package pki

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
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
	// RenewalDue is when a running node renews it: the server's renewal
	// for the leaves it issues, the kubelet or kube-proxy's rotation
	// (Rotated) from the cluster at the earliest. Zero for a CA: CAs are
	// never replaced.
	RenewalDue time.Time
	Rotated    bool
}

// RenewalPolicy is what the running server renews by, recorded in its PKI
// dir for `certs status`.
type RenewalPolicy struct {
	RenewPercentLeft int `json:"renewPercentLeft"`
}

const renewalPolicyFile = "renewal.json"

// WriteRenewalPolicy records the policy of the server whose PKI dir this is.
func WriteRenewalPolicy(dir string, policy RenewalPolicy) error {
	out, err := json.Marshal(policy)
	if err != nil {
		return fmt.Errorf("encode renewal policy: %w", err)
	}
	return writeIfChanged(filepath.Join(dir, renewalPolicyFile), append(out, '\n'), 0o644)
}

// readRenewalPolicy returns the recorded policy, or the default one when a
// node has none (a worker).
func readRenewalPolicy(dir string) (RenewalPolicy, error) {
	policy := RenewalPolicy{RenewPercentLeft: DefaultRenewPercentLeft}
	raw, err := os.ReadFile(filepath.Join(dir, renewalPolicyFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return policy, nil
	case err != nil:
		return policy, fmt.Errorf("read renewal policy: %w", err)
	}
	if err := json.Unmarshal(raw, &policy); err != nil {
		return policy, fmt.Errorf("read renewal policy %s: %w", filepath.Join(dir, renewalPolicyFile), err)
	}
	return policy, nil
}

// rotationStart is the share of its life after which client-go's
// certificate manager (the kubelet's and a worker's kube-proxy's) renews a
// certificate at the earliest; it picks a moment between 70% and 90%.
const rotationStart = 0.7

// Status lists every certificate in the given PKI directories, sorted by
// name: the cluster's first (a worker has none), then a node's, whose names
// are prefixed "node/". Certificates the kubelet or a rotation manager
// keeps ("<name>-current.pem") are listed under <name>. Subdirectories of
// the cluster's directory (etcd's) are listed as "<dir>/<name>".
func Status(cluster Files, nodes ...Files) ([]CertificateStatus, error) {
	policy, err := readRenewalPolicy(cluster.Dir)
	if err != nil {
		return nil, err
	}
	var statuses []CertificateStatus
	dirs := append([]Files{cluster}, nodes...)
	for i, dir := range dirs {
		prefix := ""
		if i > 0 {
			prefix = "node/"
		}
		found, err := dirStatus(dir.Dir, prefix, policy)
		if err != nil {
			return nil, err
		}
		statuses = append(statuses, found...)
		if i == 0 {
			subs, _ := filepath.Glob(filepath.Join(dir.Dir, "*", "*.crt"))
			for _, sub := range subs {
				found, err := dirStatus(filepath.Dir(sub), filepath.Base(filepath.Dir(sub))+"/", policy)
				if err != nil {
					return nil, err
				}
				statuses = append(statuses, found...)
			}
		}
	}
	slices.SortFunc(statuses, func(a, b CertificateStatus) int { return strings.Compare(a.Name, b.Name) })
	if len(statuses) == 0 {
		return nil, fmt.Errorf("no certificates in %s (has monokube started with this --data-dir?)", cluster.Dir)
	}
	return statuses, nil
}

func dirStatus(dir, prefix string, policy RenewalPolicy) ([]CertificateStatus, error) {
	crts, _ := filepath.Glob(filepath.Join(dir, "*.crt"))
	pems, _ := filepath.Glob(filepath.Join(dir, "*-current.pem"))
	var statuses []CertificateStatus
	for _, path := range append(crts, pems...) {
		base := filepath.Base(path)
		certs, err := cert.CertsFromFile(path)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		c := certs[0]
		status := CertificateStatus{
			Name:     prefix + strings.TrimSuffix(strings.TrimSuffix(base, ".crt"), "-current.pem"),
			Subject:  describe(c.Subject.CommonName, c.Subject.Organization),
			Issuer:   c.Issuer.CommonName,
			NotAfter: c.NotAfter,
			IsCA:     c.IsCA,
			Rotated:  strings.HasSuffix(base, "-current.pem"),
		}
		switch {
		case c.IsCA:
		case status.Rotated:
			lifetime := c.NotAfter.Sub(c.NotBefore)
			status.RenewalDue = c.NotBefore.Add(time.Duration(float64(lifetime) * rotationStart))
		default:
			status.RenewalDue = RenewalDue(c, policy.RenewPercentLeft)
		}
		statuses = append(statuses, status)
	}
	return statuses, nil
}

func describe(commonName string, organizations []string) string {
	subject := "CN=" + commonName
	for _, o := range organizations {
		subject += ",O=" + o
	}
	return subject
}
