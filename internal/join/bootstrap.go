package join

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
)

// groupPrefix is the extra group a bootstrap token authenticates into,
// followed by its role, so RBAC can tell worker from controller joins.
const groupPrefix = "system:bootstrappers:monokube:"

// roleLabel records a token's role on its Secret.
const roleLabel = "monokube.io/join-role"

// Issued is a bootstrap token as `token list` shows it.
type Issued struct {
	ID          string
	Role        string
	Expiration  time.Time // zero: never
	Description string
}

// CreateBootstrapToken stores a new bootstrap token for role in
// kube-system. With ttl > 0 the cluster's token cleaner deletes it at expiry
// and the API server refuses it from then on.
// It returns the token and its expiry (zero without one).
func CreateBootstrapToken(ctx context.Context, client kubernetes.Interface, role string, ttl time.Duration, description string) (string, time.Time, error) {
	token, err := bootstraputil.GenerateBootstrapToken()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("generate token: %w", err)
	}
	var expires time.Time
	id, secret, _ := strings.Cut(token, ".")
	data := map[string]string{
		bootstrapapi.BootstrapTokenIDKey:               id,
		bootstrapapi.BootstrapTokenSecretKey:           secret,
		bootstrapapi.BootstrapTokenUsageAuthentication: "true",
		bootstrapapi.BootstrapTokenExtraGroupsKey:      groupPrefix + role,
		bootstrapapi.BootstrapTokenDescriptionKey:      description,
	}
	if ttl > 0 {
		expires = time.Now().Add(ttl).UTC().Truncate(time.Second)
		data[bootstrapapi.BootstrapTokenExpirationKey] = expires.Format(time.RFC3339)
	}
	object := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      bootstraputil.BootstrapTokenSecretName(id),
			Namespace: metav1.NamespaceSystem,
			Labels:    map[string]string{roleLabel: role},
		},
		Type:       corev1.SecretTypeBootstrapToken,
		StringData: data,
	}
	if _, err := client.CoreV1().Secrets(metav1.NamespaceSystem).Create(ctx, object, metav1.CreateOptions{}); err != nil {
		return "", time.Time{}, fmt.Errorf("store bootstrap token: %w", err)
	}
	return token, expires, nil
}

// ListBootstrapTokens returns the join tokens still valid, soonest expiry last.
func ListBootstrapTokens(ctx context.Context, client kubernetes.Interface) ([]Issued, error) {
	secrets, err := client.CoreV1().Secrets(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{LabelSelector: roleLabel})
	if err != nil {
		return nil, fmt.Errorf("list bootstrap tokens: %w", err)
	}
	var issued []Issued
	for _, secret := range secrets.Items {
		item := Issued{
			ID:          string(secret.Data[bootstrapapi.BootstrapTokenIDKey]),
			Role:        secret.Labels[roleLabel],
			Description: string(secret.Data[bootstrapapi.BootstrapTokenDescriptionKey]),
		}
		if raw := secret.Data[bootstrapapi.BootstrapTokenExpirationKey]; len(raw) > 0 {
			expiration, err := time.Parse(time.RFC3339, string(raw))
			if err == nil && time.Now().After(expiration) {
				continue // expired; the token cleaner removes it shortly
			}
			item.Expiration = expiration
		}
		issued = append(issued, item)
	}
	slices.SortFunc(issued, func(a, b Issued) int { return strings.Compare(a.ID, b.ID) })
	return issued, nil
}

// InvalidateBootstrapToken deletes a token; joins with it fail from then on.
func InvalidateBootstrapToken(ctx context.Context, client kubernetes.Interface, id string) error {
	if !bootstraputil.IsValidBootstrapTokenID(id) {
		return fmt.Errorf("%q is not a token id (six lower-case letters or digits, as `token list` shows)", id)
	}
	err := client.CoreV1().Secrets(metav1.NamespaceSystem).Delete(ctx, bootstraputil.BootstrapTokenSecretName(id), metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("no token with id %s (already invalidated or expired?)", id)
	}
	if err != nil {
		return fmt.Errorf("invalidate token %s: %w", id, err)
	}
	return nil
}
