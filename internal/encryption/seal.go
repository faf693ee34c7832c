package encryption

import (
	"context"
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"

	"github.com/monokube/monokube/internal/pki"
)

// The cluster's copy of the keys lives in a ConfigMap, sealed with the
// cluster CA's key (see pki.SealWithCAKey). During a CA rotation a second
// copy is sealed under the new CA's key, so servers open the keys on
// either side of the switch.

const sealPurpose = "monokube secrets-encryption keys"

func seal(caKey []byte, keys []Key) ([]byte, error) {
	plain, err := json.Marshal(keys)
	if err != nil {
		return nil, err
	}
	return pki.SealWithCAKey(caKey, sealPurpose, plain)
}

func unseal(caKey, sealed []byte) ([]Key, error) {
	plain, err := pki.OpenWithCAKey(caKey, sealPurpose, sealed)
	if err != nil {
		return nil, fmt.Errorf("the cluster's encryption keys: %w", err)
	}
	var keys []Key
	if err := json.Unmarshal(plain, &keys); err != nil {
		return nil, fmt.Errorf("decode the cluster's encryption keys: %w", err)
	}
	return keys, nil
}

// SealForNextCA adds to the cluster's encryption state a copy of the keys
// sealed under a new CA key, opened with the current one; servers whose CA
// key changed open that copy. found is false without encryption state.
func SealForNextCA(ctx context.Context, client kubernetes.Interface, caKey, nextCAKey []byte) (found bool, err error) {
	return updateSealed(ctx, client, caKey, func(state *State) error {
		next, err := seal(nextCAKey, state.Keys)
		state.sealedNext = next
		return err
	})
}

// AdoptNextCA makes the new CA key's copy the only one, once every server
// holds that key.
func AdoptNextCA(ctx context.Context, client kubernetes.Interface, caKey []byte) (found bool, err error) {
	return updateSealed(ctx, client, caKey, func(state *State) error {
		sealed, err := seal(caKey, state.Keys)
		state.sealed, state.sealedNext = sealed, nil
		return err
	})
}

func updateSealed(ctx context.Context, client kubernetes.Interface, caKey []byte, change func(*State) error) (bool, error) {
	for {
		state, found, err := Load(ctx, client, caKey)
		if err != nil || !found {
			return found, err
		}
		if err := change(&state); err != nil {
			return true, err
		}
		err = state.save(ctx, client)
		if apierrors.IsConflict(err) {
			continue
		}
		return true, err
	}
}
