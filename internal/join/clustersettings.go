package join

import "github.com/monokube/monokube/internal/config"

// ClusterSettings are the cluster-wide settings every node must share with
// the server; a worker reads them from the cluster instead of a config file
// of its own, so they cannot drift apart. The network part is the server's
// spec.network as it is, so no field is copied by hand.
type ClusterSettings struct {
	ClusterName string             `json:"clusterName"`
	Network     config.NetworkSpec `json:"network"`
	// NetworkPolicy says whether every node enforces NetworkPolicies;
	// absent (a server from before the setting) means yes.
	NetworkPolicy *bool `json:"networkPolicy,omitempty"`
	// Profile is the cluster's spec.profile: every node hardens to it.
	Profile string `json:"profile,omitempty"`
}

// EnforceNetworkPolicy reports whether nodes enforce NetworkPolicies.
func (s ClusterSettings) EnforceNetworkPolicy() bool {
	return s.NetworkPolicy == nil || *s.NetworkPolicy
}

// The ConfigMap in kube-system that holds ClusterSettings, readable by
// nodes and worker bootstrap tokens only.
const (
	SettingsConfigMap = "monokube-cluster"
	SettingsKey       = "settings.json"
)
