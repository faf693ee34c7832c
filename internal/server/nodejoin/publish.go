package nodejoin

import (
	"context"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/monokube/monokube/internal/carotation"
	"github.com/monokube/monokube/internal/join"
	"github.com/monokube/monokube/internal/registries"
)

// PublishClusterSettings stores the settings and the RBAC that lets joining
// and joined nodes read them, request certificates and see each other for
// the pod network. Safe to repeat.
func PublishClusterSettings(ctx context.Context, client kubernetes.Interface, settings join.ClusterSettings, registrySettings registries.Settings) error {
	raw, err := json.Marshal(settings)
	if err != nil {
		return err
	}
	registrySecret, err := registries.Secret(registrySettings)
	if err != nil {
		return err
	}
	configMap := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: join.SettingsConfigMap, Namespace: metav1.NamespaceSystem},
		Data:       map[string]string{join.SettingsKey: string(raw)},
	}
	bootstrappers := []rbacv1.Subject{
		{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: join.BootstrapGroup(join.RoleWorker)},
		{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: join.BootstrapGroup(join.RoleController)},
	}
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "monokube:cluster-settings", Namespace: metav1.NamespaceSystem},
		Rules: []rbacv1.PolicyRule{{
			// The CA rotation's bundle: what nodes trust, and the stage,
			// watched by name (a field selector on metadata.name).
			APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{join.SettingsConfigMap, carotation.BundleConfigMap},
			Verbs: []string{"get", "list", "watch"},
		}},
	}
	// Registry credentials: for joined nodes only, which follow changes.
	registriesRole := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "monokube:registries", Namespace: metav1.NamespaceSystem},
		Rules: []rbacv1.PolicyRule{{
			APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{registries.SecretName}, Verbs: []string{"get", "list", "watch"},
		}},
	}
	registriesBinding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "monokube:registries", Namespace: metav1.NamespaceSystem},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: registriesRole.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:nodes"}},
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
	// addresses; the Node authorizer lets a node list only itself. The
	// NetworkPolicy controller on every node watches pods, namespaces and
	// the policies.
	nodeNetworkRole := &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "monokube:node-network"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"nodes", "pods", "namespaces"}, Verbs: []string{"list", "watch"}},
			{APIGroups: []string{"networking.k8s.io"}, Resources: []string{"networkpolicies"}, Verbs: []string{"list", "watch"}},
		},
	}
	nodeNetworkBinding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "monokube:node-network"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: nodeNetworkRole.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:nodes"}},
	}
	rbac := client.RbacV1()
	steps := []func() error{
		// The registry settings and their RBAC before the ConfigMap a
		// joining worker waits for: once it sees that, it may read them.
		func() error { return apply(ctx, client.CoreV1().Secrets(metav1.NamespaceSystem), registrySecret) },
		func() error { return apply(ctx, rbac.Roles(metav1.NamespaceSystem), registriesRole) },
		func() error { return apply(ctx, rbac.RoleBindings(metav1.NamespaceSystem), registriesBinding) },
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
