package join

// Identities both sides of a join agree on.
const (
	// NodeUserPrefix starts every node's user name (system:node:<name>),
	// the form the Node authorizer and NodeRestriction recognise.
	NodeUserPrefix = "system:node:"
	// KubeProxyUser is the identity kube-proxy gets on every node; the
	// upstream bootstrap policy binds it to system:node-proxier.
	KubeProxyUser = "system:kube-proxy"
)

// BootstrapGroup is the extra group a bootstrap token of role authenticates
// into, so RBAC and the approver can tell worker from controller joins.
func BootstrapGroup(role string) string { return groupPrefix + role }
