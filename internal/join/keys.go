package join

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	bootstrapapi "k8s.io/cluster-bootstrap/token/api"
	bootstraputil "k8s.io/cluster-bootstrap/token/util"
)

// SharedKeys are the PKI files (relative to <data-dir>/pki) that every
// server of a cluster holds the same: the CAs and their keys, the
// service-account key pair and the encryption-at-rest keys (the API
// server's configuration, and the key file of clusters made before key
// rotation), and the CA a CA rotation retired. A server that joins gets
// them from the cluster; its own leaves it issues itself.
var SharedKeys = []string{
	"ca.crt", "ca.key", "ca-retired.crt", "front-proxy-ca.crt", "front-proxy-ca.key", "sa.key", "sa.pub",
	"encryption-config.yaml", "encryption.key", "etcd/ca.crt", "etcd/ca.key",
}

// sealedKey is the data key of the Secret that carries the sealed keys.
const sealedKey = "keys"

// keysSecretName is the Secret a controller token's keys travel in.
func keysSecretName(tokenID string) string { return "monokube-keys-" + tokenID }

// SealKeys reads the shared keys from pkiDir and encrypts them with a key
// derived from the bootstrap token: the datastore (and anyone who can read
// kube-system Secrets) sees only ciphertext; only the token's holder can
// open it.
func SealKeys(pkiDir, bootstrap string) ([]byte, error) {
	files := map[string][]byte{}
	for _, name := range SharedKeys {
		data, err := os.ReadFile(filepath.Join(pkiDir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue // encryption and etcd keys exist only when used
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		files[name] = data
	}
	plain, err := json.Marshal(files)
	if err != nil {
		return nil, err
	}
	aead, err := tokenCipher(bootstrap)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	return aead.Seal(nonce, nonce, plain, []byte(bootstrap[:6])), nil
}

// OpenKeys decrypts sealed keys and writes them into pkiDir, private.
func OpenKeys(sealed []byte, bootstrap, pkiDir string) error {
	aead, err := tokenCipher(bootstrap)
	if err != nil {
		return err
	}
	if len(sealed) < aead.NonceSize() {
		return errors.New("the cluster's keys are truncated")
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte(bootstrap[:6]))
	if err != nil {
		return errors.New("the cluster's keys do not open with this token")
	}
	var files map[string][]byte
	if err := json.Unmarshal(plain, &files); err != nil {
		return fmt.Errorf("decode the cluster's keys: %w", err)
	}
	for name, data := range files {
		if !slices.Contains(SharedKeys, name) {
			return fmt.Errorf("the cluster's keys hold an unexpected file %q", name)
		}
		path := filepath.Join(pkiDir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
		}
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

func tokenCipher(bootstrap string) (cipher.AEAD, error) {
	if !bootstraputil.IsValidBootstrapToken(bootstrap) {
		return nil, errors.New("not a bootstrap token")
	}
	key := sha256.Sum256([]byte("monokube controller keys\x00" + bootstrap))
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// PublishKeys stores sealed keys for a controller token, readable only by
// that token (a Role naming its user), and owned by the token's Secret so
// the cluster deletes them when the token expires or is invalidated.
func PublishKeys(ctx context.Context, client kubernetes.Interface, bootstrap string, sealed []byte) error {
	id, _, _ := strings.Cut(bootstrap, ".")
	secrets := client.CoreV1().Secrets(metav1.NamespaceSystem)
	token, err := secrets.Get(ctx, bootstraputil.BootstrapTokenSecretName(id), metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("find token %s: %w", id, err)
	}
	owner := []metav1.OwnerReference{{APIVersion: "v1", Kind: "Secret", Name: token.Name, UID: token.UID}}
	name := keysSecretName(id)
	meta := metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceSystem, OwnerReferences: owner, Labels: map[string]string{roleLabel: RoleController}}
	if _, err := secrets.Create(ctx, &corev1.Secret{ObjectMeta: meta, Data: map[string][]byte{sealedKey: sealed}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("store the cluster's keys for token %s: %w", id, err)
	}
	role := &rbacv1.Role{ObjectMeta: meta, Rules: []rbacv1.PolicyRule{{
		APIGroups: []string{""}, Resources: []string{"secrets"}, ResourceNames: []string{name}, Verbs: []string{"get"},
	}}}
	if _, err := client.RbacV1().Roles(metav1.NamespaceSystem).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("grant token %s its keys: %w", id, err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: meta,
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: bootstrapapi.BootstrapUserPrefix + id}},
	}
	if _, err := client.RbacV1().RoleBindings(metav1.NamespaceSystem).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("grant token %s its keys: %w", id, err)
	}
	return nil
}

// FetchKeys reads the sealed keys of a controller token, as that token.
func FetchKeys(ctx context.Context, client kubernetes.Interface, bootstrap string) ([]byte, error) {
	id, _, _ := strings.Cut(bootstrap, ".")
	secret, err := client.CoreV1().Secrets(metav1.NamespaceSystem).Get(ctx, keysSecretName(id), metav1.GetOptions{})
	switch {
	case apierrors.IsUnauthorized(err):
		return nil, fmt.Errorf("the cluster refused the token (expired or invalidated?): %w", err)
	case apierrors.IsForbidden(err) || apierrors.IsNotFound(err):
		return nil, errors.New("this token cannot join a server: it is not a controller token (create one with `monokube token create --role controller`)")
	case err != nil:
		return nil, fmt.Errorf("fetch the cluster's keys: %w", err)
	}
	return secret.Data[sealedKey], nil
}
