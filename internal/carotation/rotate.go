package carotation

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"

	"github.com/monokube/monokube/internal/encryption"
	"github.com/monokube/monokube/internal/pki"
)

// Rotation drives the stages from one server: it saves each stage, waits
// until every server runs it, publishes it to the nodes and waits until
// every Ready node runs it. Interrupted, the same command goes on from the
// stage it finds.
type Rotation struct {
	// Kubeconfig is this server's own admin identity; the client is made
	// again for every call, because the CA it trusts changes under it.
	Kubeconfig string
	Files      pki.Files
	// CACert and CAKey (PEM) are a CA the user brings; empty makes one.
	CACert, CAKey []byte
	// Wait bounds each stage's wait for the servers and for the nodes.
	Wait time.Duration
	Log  func(format string, args ...any)
}

// Start trusts a new CA everywhere, then makes it sign everything.
func (r *Rotation) Start(ctx context.Context) error {
	state, err := r.load(ctx)
	if err != nil {
		return err
	}
	switch state.Stage {
	case StageRotated:
		r.Log("Stage rotated: the new CA already signs; run `monokube certs rotate-ca --finish` to drop the old one")
		return nil
	case StageTrusted:
		r.Log("Going on from stage trusted (generation %d)", state.Generation)
	default:
		if state, err = r.begin(ctx, state); err != nil {
			return err
		}
	}
	if err := r.waitFor(ctx, state); err != nil {
		return err
	}
	r.Log("The new CA is trusted on every server and node")
	if state, err = r.step(ctx, StageRotated); err != nil {
		return err
	}
	if err := r.waitFor(ctx, state); err != nil {
		return err
	}
	r.Log("The new CA signs every certificate and the new key every service-account token; the old CA is still trusted.")
	r.Log("Hand out new kubeconfigs and join tokens now, then run `monokube certs rotate-ca --finish` to drop the old CA.")
	return nil
}

// DropOldServiceAccountKeys makes the servers stop verifying tokens
// signed by the service-account keys a finished rotation replaced: run it
// once no such token is in use (the kubelet renews a pod's token within
// about an hour; a token someone made for a year lasts a year).
func (r *Rotation) DropOldServiceAccountKeys(ctx context.Context) error {
	state, err := r.load(ctx)
	if err != nil {
		return err
	}
	if state.Stage != StageFinished {
		return fmt.Errorf("stage %q: old service-account keys are dropped after `monokube certs rotate-ca --finish`", state.Stage)
	}
	if len(state.OldSAPub) == 0 {
		r.Log("No old service-account key is left")
		return nil
	}
	if state, err = r.change(ctx, StageFinished, func(s *State) { s.OldSAPub = nil }); err != nil {
		return err
	}
	if err := r.waitFor(ctx, state); err != nil {
		return err
	}
	r.Log("Tokens signed by the old service-account keys are refused everywhere")
	return nil
}

// Finish drops the old CA everywhere.
func (r *Rotation) Finish(ctx context.Context) error {
	state, err := r.load(ctx)
	if err != nil {
		return err
	}
	switch state.Stage {
	case StageRotated:
		if state, err = r.step(ctx, StageFinished); err != nil {
			return err
		}
	case StageFinished:
		r.Log("Going on from stage finished (generation %d)", state.Generation)
	default:
		return fmt.Errorf("no CA rotation to finish (stage %q): start one with `monokube certs rotate-ca`", state.Stage)
	}
	if err := r.waitFor(ctx, state); err != nil {
		return err
	}
	caKey, err := os.ReadFile(r.Files.CAKey())
	if err != nil {
		return err
	}
	if err := retry(ctx, r, func(client kubernetes.Interface) error {
		_, err := encryption.AdoptNextCA(ctx, client, caKey)
		return err
	}); err != nil {
		return fmt.Errorf("re-seal the secrets-encryption keys under the new CA: %w", err)
	}
	r.Log("The old CA is trusted nowhere. Old service-account keys still verify the tokens they signed; kubeconfigs and join tokens made before the rotation no longer work.")
	return nil
}

// begin makes (or takes) the new CA and key and saves stage trusted.
func (r *Rotation) begin(ctx context.Context, state State) (State, error) {
	oldKey, err := os.ReadFile(r.Files.CAKey())
	if err != nil {
		return state, fmt.Errorf("read the cluster CA key (run on a server, as root): %w", err)
	}
	current, err := pki.LoadAuthority(r.Files.CACert(), r.Files.CAKey())
	if err != nil {
		return state, err
	}
	if all, err := cert.ParseCertsPEM(current.CertPEM); err != nil || len(all) != 1 {
		return state, errors.New("ca.crt holds more than one CA but no rotation is under way; restore it from a backup")
	}
	newCA, newKey, err := r.newCA()
	if err != nil {
		return state, err
	}
	saKey, err := keyutil.MakeEllipticPrivateKeyPEM()
	if err != nil {
		return state, err
	}
	oldPub, err := os.ReadFile(r.Files.ServiceAccountPub())
	if err != nil {
		return state, err
	}
	if err := retry(ctx, r, func(client kubernetes.Interface) error {
		_, err := encryption.SealForNextCA(ctx, client, oldKey, newKey)
		return err
	}); err != nil {
		return state, fmt.Errorf("seal the secrets-encryption keys for the new CA: %w", err)
	}
	err = retry(ctx, r, func(client kubernetes.Interface) error {
		s, _, err := Load(ctx, client, oldKey)
		if err != nil {
			return err
		}
		s.Generation++
		s.Stage, s.OldCA, s.NewCA, s.OldSAPub, s.Started = StageTrusted, current.SignerPEM(), newCA, oldPub, time.Now()
		if err := s.SealKeys(Keys{CAKey: newKey, ServiceAccountKey: saKey}, oldKey, newKey); err != nil {
			return err
		}
		if err := s.Save(ctx, client); err != nil {
			return err
		}
		state = s
		return nil
	})
	if err != nil {
		return state, err
	}
	c, _ := cert.ParseCertsPEM(newCA)
	r.Log("Stage trusted (generation %d): new CA %q (expires %s) is trusted beside the old one", state.Generation,
		c[0].Subject.CommonName, c[0].NotAfter.UTC().Format(time.RFC3339))
	return state, nil
}

// newCA is the CA the user brought, checked, or a new one.
func (r *Rotation) newCA() (certPEM, keyPEM []byte, err error) {
	if len(r.CACert) == 0 {
		// Named apart from the CA it replaces, for whoever reads both.
		ca, err := pki.NewAuthority("kubernetes-ca-" + time.Now().UTC().Format("20060102-150405"))
		if err != nil {
			return nil, nil, err
		}
		keyPEM, err := keyutil.MarshalPrivateKeyToPEM(ca.Key)
		return ca.CertPEM, keyPEM, err
	}
	certs, err := cert.ParseCertsPEM(r.CACert)
	if err != nil {
		return nil, nil, fmt.Errorf("--ca-cert: %w", err)
	}
	if len(certs) != 1 || !certs[0].IsCA || certs[0].KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, nil, errors.New("--ca-cert must hold exactly one CA certificate allowed to sign certificates")
	}
	if time.Until(certs[0].NotAfter) < 365*24*time.Hour {
		return nil, nil, fmt.Errorf("--ca-cert expires at %s, within a year: the certificates it signs would not last", certs[0].NotAfter.UTC().Format(time.RFC3339))
	}
	key, err := keyutil.ParsePrivateKeyPEM(r.CAKey)
	if err != nil {
		return nil, nil, fmt.Errorf("--ca-key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok || !pki.KeyMatches(certs[0], signer) {
		return nil, nil, errors.New("--ca-key is not the private key of --ca-cert")
	}
	return pki.EncodeCert(certs[0]), r.CAKey, nil
}

func (r *Rotation) load(ctx context.Context) (State, error) {
	caKey, err := os.ReadFile(r.Files.CAKey())
	if err != nil {
		return State{}, fmt.Errorf("read the cluster CA key (run on a server, as root): %w", err)
	}
	var state State
	err = retry(ctx, r, func(client kubernetes.Interface) error {
		state, _, err = Load(ctx, client, caKey)
		return err
	})
	return state, err
}

// step saves the next stage.
func (r *Rotation) step(ctx context.Context, stage string) (State, error) {
	return r.change(ctx, stage, func(*State) {})
}

// change saves the next generation at stage, changed by edit.
func (r *Rotation) change(ctx context.Context, stage string, edit func(*State)) (State, error) {
	caKey, err := os.ReadFile(r.Files.CAKey())
	if err != nil {
		return State{}, err
	}
	var state State
	err = retry(ctx, r, func(client kubernetes.Interface) error {
		s, _, err := Load(ctx, client, caKey)
		if err != nil {
			return err
		}
		s.Generation++
		s.Stage = stage
		edit(&s)
		if stage == StageFinished && s.Keys != nil {
			// Every server holds the new CA key now: the copy sealed
			// under the old one goes with it.
			if err := s.SealKeys(*s.Keys, s.Keys.CAKey); err != nil {
				return err
			}
		}
		if err := s.Save(ctx, client); err != nil {
			return err
		}
		state = s
		return nil
	})
	if err == nil {
		r.Log("Stage %s (generation %d)", stage, state.Generation)
	}
	return state, err
}
