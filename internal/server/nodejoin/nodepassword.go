package nodejoin

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// A node's password is a private key that never leaves its data dir: it
// signs the node's first certificate request, so the request proves the
// node holds it, and the server keeps only a hash of its public half.
// Unlike a shared secret, nothing that reads certificate requests (every
// bootstrap identity can) learns enough to impersonate the node.

// nodePasswordSecret names the Secret in kube-system that remembers which
// node password first claimed a node name (k3s keeps the same kind of record).
func nodePasswordSecret(nodeName string) string { return nodeName + ".node-password.monokube" }

const nodePasswordKey = "hash"

// publicKeyHash is how the server remembers a node password.
func publicKeyHash(publicKey any) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(publicKey)
	if err != nil {
		return "", fmt.Errorf("encode public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// claimNodeName lets a bootstrap request for nodeName through when its key
// is the password stored for the name, or when the name is free (and then
// stores it). A name held by a Node that joined without a password (the
// server's own node) is not free.
func claimNodeName(ctx context.Context, client kubernetes.Interface, nodeName string, publicKey any) error {
	hash, err := publicKeyHash(publicKey)
	if err != nil {
		return err
	}
	secrets := client.CoreV1().Secrets(metav1.NamespaceSystem)
	existing, err := secrets.Get(ctx, nodePasswordSecret(nodeName), metav1.GetOptions{})
	switch {
	case err == nil:
		if string(existing.Data[nodePasswordKey]) != hash {
			return fmt.Errorf("node name %q is taken by another machine (its node password differs): "+
				"join with another --node-name, or free the name with `kubectl delete node %s`", nodeName, nodeName)
		}
		return nil
	case !apierrors.IsNotFound(err):
		return fmt.Errorf("%w: read node password: %v", errNotYet, err)
	}
	if _, err := client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{}); err == nil {
		return fmt.Errorf("node name %q belongs to a node that did not join with a token (a server's own node); join with another --node-name", nodeName)
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: nodePasswordSecret(nodeName), Namespace: metav1.NamespaceSystem},
		Type:       "monokube.io/node-password",
		Data:       map[string][]byte{nodePasswordKey: []byte(hash)},
	}
	if _, err := secrets.Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		// A concurrent claim or a transient error: decide again later.
		return fmt.Errorf("%w: store node password: %v", errNotYet, err)
	}
	klog.InfoS("Node name claimed", "node", nodeName)
	return nil
}

// forgetNodePassword frees a deleted Node's name for a new machine.
func forgetNodePassword(ctx context.Context, client kubernetes.Interface, nodeName string) {
	err := client.CoreV1().Secrets(metav1.NamespaceSystem).Delete(ctx, nodePasswordSecret(nodeName), metav1.DeleteOptions{})
	if err == nil {
		klog.InfoS("Node deleted; its name is free to join again", "node", nodeName)
	} else if !apierrors.IsNotFound(err) {
		klog.ErrorS(err, "Could not free the node password of a deleted node", "node", nodeName)
	}
}
