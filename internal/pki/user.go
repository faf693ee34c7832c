package pki

import (
	"fmt"
	"os"
	"strings"
	"time"
)

// UserRequest describes a user kubeconfig signed by the cluster CA.
type UserRequest struct {
	Name   string
	Groups []string
	// Validity of the client certificate; zero means DefaultLeafValidity.
	Validity time.Duration
	// AllowSystem permits names and groups with the reserved "system:" prefix.
	AllowSystem bool
	ClusterName string
	ServerURL   string
}

// ValidateUser checks a user name and groups before anything is signed.
func ValidateUser(req UserRequest) error {
	if err := validateIdentity("user name", req.Name, req.AllowSystem); err != nil {
		return err
	}
	for _, group := range req.Groups {
		if err := validateIdentity("group", group, req.AllowSystem); err != nil {
			return err
		}
	}
	return nil
}

// validateIdentity accepts what RBAC subjects commonly look like ("jane",
// "jane@example.com", "team:dev") and refuses what breaks kubeconfigs,
// certificate subjects or RBAC bindings.
func validateIdentity(what, value string, allowSystem bool) error {
	switch {
	case value == "":
		return fmt.Errorf("%s must not be empty", what)
	case len(value) > 253:
		return fmt.Errorf("%s %q is longer than 253 characters", what, value)
	case strings.HasPrefix(value, "system:") && !allowSystem:
		return fmt.Errorf("%s %q uses the reserved prefix \"system:\" (Kubernetes components use it); pass --allow-system if you mean it", what, value)
	case strings.ContainsAny(value, ",/\\\"'`=+<>;#"):
		return fmt.Errorf("%s %q contains a character that is not allowed (, / \\ quotes = + < > ; #)", what, value)
	}
	for _, r := range value {
		if r < 0x21 || r > 0x7e {
			return fmt.Errorf("%s %q must be printable ASCII without spaces", what, value)
		}
	}
	return nil
}

// UserKubeconfig signs a client certificate (CN=name, one O per group) with
// the CA in files and returns a kubeconfig embedding it. The key is not
// stored anywhere else: whoever receives the kubeconfig holds the only copy.
func UserKubeconfig(files Files, req UserRequest) ([]byte, error) {
	if err := ValidateUser(req); err != nil {
		return nil, err
	}
	if _, err := os.Stat(files.CAKey()); err != nil {
		return nil, fmt.Errorf("cluster CA key not readable (run on a server, as root, with its --data-dir): %w", err)
	}
	ca, err := loadAuthority(files.CACert(), files.CAKey())
	if err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := ca.Issue(Leaf{Name: req.Name, CommonName: req.Name, Organizations: req.Groups, Client: true, Validity: req.Validity})
	if err != nil {
		return nil, err
	}
	return Kubeconfig(req.ClusterName, req.ServerURL, ca.CertPEM, certPEM, keyPEM, req.Name)
}
