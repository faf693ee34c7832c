package pki

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

// Leaf describes a certificate an Authority signs.
type Leaf struct {
	// Name is the file base name: <dir>/<Name>.crt and <dir>/<Name>.key.
	Name          string
	CommonName    string
	Organizations []string
	DNSNames      []string
	IPs           []net.IP
	// Client and Server select the extended key usages.
	Client, Server bool
	Validity       time.Duration
	// ServeCA puts the CA after the certificate in the pair file, for a
	// serving certificate whose clients check the CA against a pin.
	ServeCA bool
	// RenewPercentLeft makes Ensure re-issue the leaf when less than this
	// percentage of its lifetime remains; zero means DefaultRenewPercentLeft.
	RenewPercentLeft int
}

// DefaultLeafValidity is one year, as kubeadm and k3s issue them; they are
// renewed at start when close to expiry.
const DefaultLeafValidity = 365 * 24 * time.Hour

// DefaultRenewPercentLeft is the share of a leaf's lifetime below which
// it is re-issued at start.
const DefaultRenewPercentLeft = 20

// Issue signs a new key pair for leaf and returns both as PEM.
func (ca *Authority) Issue(leaf Leaf) (certPEM, keyPEM []byte, err error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	der, err := ca.sign(leaf, key.Public())
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: cert.CertificateBlockType, Bytes: der}), keyPEM, nil
}

func (ca *Authority) sign(leaf Leaf, public crypto.PublicKey) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	validity := leaf.Validity
	if validity == 0 {
		validity = DefaultLeafValidity
	}
	// Backdate a little so a node whose clock lags behind still accepts it;
	// the full validity still lies ahead. A tenth at most, so that a short
	// lifetime (tests) is not mostly past when it is issued.
	now := time.Now().UTC()
	notBefore := now.Add(-min(5*time.Minute, validity/10))
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: leaf.CommonName, Organization: leaf.Organizations},
		DNSNames:              leaf.DNSNames,
		IPAddresses:           leaf.IPs,
		NotBefore:             notBefore,
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
	}
	if leaf.Client {
		template.ExtKeyUsage = append(template.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	if leaf.Server {
		template.ExtKeyUsage = append(template.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	der, err := x509.CreateCertificate(rand.Reader, template, ca.Cert, public, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", leaf.Name, err)
	}
	return der, nil
}

// Ensure makes sure <dir>/<leaf.Name>.crt/.key exist, were signed by ca,
// match leaf (subject, names, addresses) and have enough life left;
// otherwise it issues them anew. It reports whether it issued.
func (ca *Authority) Ensure(dir string, leaf Leaf) (issued bool, err error) {
	reason, err := ca.ensure(dir, leaf)
	return reason != "", err
}

// ensure is Ensure, saying why it issued ("" when it did not).
func (ca *Authority) ensure(dir string, leaf Leaf) (reason string, err error) {
	certPath, keyPath := filepath.Join(dir, leaf.Name+".crt"), filepath.Join(dir, leaf.Name+".key")
	current, err := cert.CertsFromFile(certPath)
	switch {
	case err != nil || !exists(keyPath):
		reason = "missing"
	default:
		reason = ca.unfit(current[0], leaf)
	}
	if reason != "" {
		certPEM, keyPEM, err := ca.Issue(leaf)
		if err != nil {
			return "", err
		}
		if err := writeFiles(certPath, keyPath, certPEM, keyPEM); err != nil {
			return "", err
		}
	}
	return reason, ca.writePair(dir, leaf)
}

// PairFile is <dir>/<name>.pem: the certificate and its key in one file,
// which is what components are given (as both their certificate and key
// file). A renewal replaces it in one rename; a component that re-reads
// a separate .crt and .key could catch the new key with the old
// certificate.
func PairFile(dir, name string) string { return filepath.Join(dir, name+".pem") }

// writePair writes leaf's pair file from its .crt and .key when it
// differs.
func (ca *Authority) writePair(dir string, leaf Leaf) error {
	certPEM, err := os.ReadFile(filepath.Join(dir, leaf.Name+".crt"))
	if err != nil {
		return fmt.Errorf("pair file: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, leaf.Name+".key"))
	if err != nil {
		return fmt.Errorf("pair file: %w", err)
	}
	pair := slices.Clone(certPEM)
	if leaf.ServeCA {
		pair = append(append(pair, ca.CertPEM...), ca.Retired...)
	}
	return writeIfChanged(PairFile(dir, leaf.Name), append(pair, keyPEM...), 0o600)
}

// unfit says why current no longer serves as leaf, or "" if it does.
func (ca *Authority) unfit(current *x509.Certificate, leaf Leaf) string {
	if current.CheckSignatureFrom(ca.Cert) != nil {
		return "signed by another CA"
	}
	if !EnoughLifeLeft(current, leaf.RenewPercentLeft) {
		return "renewal due"
	}
	if current.Subject.CommonName != leaf.CommonName || !slices.Equal(current.Subject.Organization, leaf.Organizations) {
		return "subject changed"
	}
	for _, name := range leaf.DNSNames {
		if !slices.Contains(current.DNSNames, name) {
			return "names changed"
		}
	}
	for _, ip := range leaf.IPs {
		if !slices.ContainsFunc(current.IPAddresses, ip.Equal) {
			return "addresses changed"
		}
	}
	return ""
}

// EnoughLifeLeft reports whether more than percent of c's lifetime is
// left (zero percent means DefaultRenewPercentLeft).
func EnoughLifeLeft(c *x509.Certificate, percent int) bool {
	return time.Now().Before(RenewalDue(c, percent))
}

// RenewalDue is when less than percent of c's lifetime is left (zero
// percent means DefaultRenewPercentLeft).
func RenewalDue(c *x509.Certificate, percent int) time.Time {
	if percent == 0 {
		percent = DefaultRenewPercentLeft
	}
	lifetime := c.NotAfter.Sub(c.NotBefore)
	return c.NotAfter.Add(-lifetime * time.Duration(percent) / 100)
}

func encodeCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: cert.CertificateBlockType, Bytes: c.Raw})
}

func writeKeyPair(certPath, keyPath string, certPEM []byte, key crypto.Signer) error {
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return fmt.Errorf("encode key: %w", err)
	}
	return writeFiles(certPath, keyPath, certPEM, keyPEM)
}

// writeFiles writes the key first and 0600, the certificate 0644: a crash
// between the two leaves no certificate without its key.
func writeFiles(certPath, keyPath string, certPEM, keyPEM []byte) error {
	if err := writeAtomic(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	return writeAtomic(certPath, certPEM, 0o644)
}

// writeIfChanged is writeAtomic unless path already holds data: a file a
// component watches is only touched when its content changes.
func writeIfChanged(path string, data []byte, mode os.FileMode) error {
	if current, err := os.ReadFile(path); err == nil && bytes.Equal(current, data) {
		return nil
	}
	return writeAtomic(path, data, mode)
}

// WriteFile replaces path through a rename, so readers never see half a
// file.
func WriteFile(path string, data []byte, mode os.FileMode) error {
	return writeAtomic(path, data, mode)
}

// writeAtomic replaces path through a rename, so readers never see half a file.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp, mode); err != nil { // WriteFile keeps the mode of an existing file
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
