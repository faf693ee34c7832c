package join

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/monokube/monokube/internal/node"
)

// ClusterSettings are the cluster-wide settings every node must share with
// the server; a worker reads them from the cluster instead of a config file
// of its own, so they cannot drift apart.
type ClusterSettings struct {
	ClusterName     string `json:"clusterName"`
	PodCIDR         string `json:"podCIDR"`
	ServiceCIDR     string `json:"serviceCIDR"`
	ClusterDNS      string `json:"clusterDNS"`
	ClusterDomain   string `json:"clusterDomain"`
	KubeProxyMode   string `json:"kubeProxyMode"`
	NetworkProvider string `json:"networkProvider"`
	FlannelBackend  string `json:"flannelBackend,omitempty"`
}

// settingsConfigMap holds ClusterSettings in kube-system, readable by nodes
// and worker bootstrap tokens only.
const (
	settingsConfigMap = "monokube-cluster"
	settingsKey       = "settings.json"
)

// PublishClusterSettings stores the settings and the RBAC that lets joining
// and joined nodes read them, request certificates and see each other for
// the pod network. Safe to repeat.
func PublishClusterSettings(ctx context.Context, client kubernetes.Interface, settings ClusterSettings) error {
	raw, err := json.Marshal(settings)
	if err != nil {
		return err
	}
	configMap := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: settingsConfigMap, Namespace: metav1.NamespaceSystem},
		Data:       map[string]string{settingsKey: string(raw)},
	}
	bootstrappers := []rbacv1.Subject{
		{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: groupPrefix + RoleWorker},
		{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: groupPrefix + RoleController},
	}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "monokube:cluster-settings", Namespace: metav1.NamespaceSystem},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{settingsConfigMap}, Verbs: []string{"get"},
		}},
	}
	roleBinding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "monokube:cluster-settings", Namespace: metav1.NamespaceSystem},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   append([]rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:nodes"}}, bootstrappers...),
	}
	// Bootstrap tokens may create certificate requests, nothing more; our
	// Approver decides them.
	csrBinding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "monokube:node-bootstrapper"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:node-bootstrapper"},
		Subjects:   bootstrappers,
	}
	// Flannel on every node watches all Nodes for their pod CIDRs and
	// addresses; the Node authorizer lets a node list only itself.
	nodeNetworkRole := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "monokube:node-network"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"list", "watch"}}},
	}
	nodeNetworkBinding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "monokube:node-network"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: nodeNetworkRole.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:nodes"}},
	}
	rbac := client.RbacV1()
	steps := []func() error{
		func() error { return apply(ctx, client.CoreV1().ConfigMaps(metav1.NamespaceSystem), configMap) },
		func() error { return apply(ctx, rbac.Roles(metav1.NamespaceSystem), role) },
		func() error { return apply(ctx, rbac.RoleBindings(metav1.NamespaceSystem), roleBinding) },
		func() error { return apply(ctx, rbac.ClusterRoleBindings(), csrBinding) },
		func() error { return apply(ctx, rbac.ClusterRoles(), nodeNetworkRole) },
		func() error { return apply(ctx, rbac.ClusterRoleBindings(), nodeNetworkBinding) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// createUpdater is the part of a typed client apply needs.
type createUpdater[T metav1.Object] interface {
	Create(context.Context, T, metav1.CreateOptions) (T, error)
	Update(context.Context, T, metav1.UpdateOptions) (T, error)
	Get(context.Context, string, metav1.GetOptions) (T, error)
}

// apply creates object, or replaces the stored one with it.
func apply[T metav1.Object](ctx context.Context, client createUpdater[T], object T) error {
	_, err := client.Create(ctx, object, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		if err != nil {
			return fmt.Errorf("create %s: %w", object.GetName(), err)
		}
		return nil
	}
	current, err := client.Get(ctx, object.GetName(), metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("read %s: %w", object.GetName(), err)
	}
	object.SetResourceVersion(current.GetResourceVersion())
	if _, err := client.Update(ctx, object, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update %s: %w", object.GetName(), err)
	}
	return nil
}

// FetchClusterSettings reads the settings as a node or bootstrap token.
func FetchClusterSettings(ctx context.Context, client kubernetes.Interface) (ClusterSettings, error) {
	var settings ClusterSettings
	configMap, err := client.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, settingsConfigMap, metav1.GetOptions{})
	if err != nil {
		return settings, fmt.Errorf("read cluster settings: %w", err)
	}
	if err := json.Unmarshal([]byte(configMap.Data[settingsKey]), &settings); err != nil {
		return settings, fmt.Errorf("cluster settings: %w", err)
	}
	return settings, nil
}

// SaveClusterSettings and LoadClusterSettings keep a worker's copy, so it
// restarts with the same settings while the server is away.
func SaveClusterSettings(path string, settings ClusterSettings) error {
	raw, err := json.MarshalIndent(settings, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return fmt.Errorf("save cluster settings: %w", err)
	}
	return nil
}

func LoadClusterSettings(path string) (ClusterSettings, error) {
	var settings ClusterSettings
	raw, err := os.ReadFile(path)
	if err != nil {
		return settings, err
	}
	if err := json.Unmarshal(raw, &settings); err != nil {
		return settings, fmt.Errorf("%s: %w", path, err)
	}
	return settings, nil
}

// NodeSetup fills a node's cluster-wide settings.
func (s ClusterSettings) NodeSetup() node.Setup {
	return node.Setup{
		PodCIDR:       s.PodCIDR,
		ClusterDNS:    s.ClusterDNS,
		ClusterDomain: s.ClusterDomain,
		KubeProxyMode: s.KubeProxyMode,
		Network: node.Network{
			Provider: s.NetworkProvider, FlannelBackend: s.FlannelBackend,
		},
	}
}
