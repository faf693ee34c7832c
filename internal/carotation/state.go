// Package carotation replaces the cluster CA and the service-account
// signing key on a running cluster. One command, run on any server,
// moves the cluster through three stages; every server and node applies
// each stage by itself and reports it:
//
//   - trusted: the new CA is trusted beside the old one everywhere, and
//     the new service-account key verifies beside the old one;
//   - rotated: the new CA signs every certificate and the new key every
//     token; the old CA is still trusted, so nothing breaks meanwhile;
//   - finished: the old CA is trusted nowhere; the old service-account
//     keys still verify the tokens they signed until those expire.
//
// Some of what a stage changes is read by the upstream components only
// when they start (the API server's service-account keys, the
// controller-manager's root CA, the kubelet's trust in the API server), so
// applying a stage restarts the monokube process: servers one at a time,
// so an HA control plane stays up; nodes keep their pods running.
package carotation

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/keyutil"

	"github.com/monokube/monokube/internal/kubeclient"
	"github.com/monokube/monokube/internal/pki"
)

const (
	// StateConfigMap (kube-system) is where servers agree: the stage, the
	// CAs, the new keys sealed under the CA keys, and each server's record.
	StateConfigMap = "monokube-ca-rotation"
	// BundleConfigMap (kube-system) is what nodes read: the stage they
	// apply and the CAs they trust. Nodes may read it and nothing else here.
	BundleConfigMap = "monokube-ca-bundle"
	// NodeAnnotation on a Node is the generation its node applied.
	NodeAnnotation = "monokube.io/ca-rotation-generation"
)

// Stages, in order.
const (
	StageTrusted  = "trusted"
	StageRotated  = "rotated"
	StageFinished = "finished"
)

const (
	dataGeneration = "generation"
	dataStage      = "stage"
	dataOldCA      = "old-ca.crt"
	dataNewCA      = "new-ca.crt"
	dataOldSAPub   = "old-sa.pub"
	dataRestarting = "restarting"
	dataStarted    = "started"
	sealedPrefix   = "sealed."
	serverPrefix   = "server."
	sealPurpose    = "monokube CA rotation keys"
)

// State is the cluster's rotation. Generation grows with every stage.
type State struct {
	Generation int64
	Stage      string
	// OldCA and NewCA are the signing certificates before and after.
	OldCA, NewCA []byte
	// OldSAPub is every service-account public key that verified tokens
	// before the rotation; they keep verifying after it.
	OldSAPub []byte
	// Keys are the new private keys, opened with this server's CA key
	// (nil on a server that holds neither CA key).
	Keys    *Keys
	Started time.Time
	Servers map[string]Record
	// Restarting is the server whose turn it is to restart, and since when:
	// servers restart one at a time.
	Restarting      string
	RestartingSince time.Time

	resourceVersion string
	sealed          map[string][]byte
}

// Keys are the new CA's and the new service-account signing key (PEM).
type Keys struct {
	CAKey             []byte `json:"caKey"`
	ServiceAccountKey []byte `json:"serviceAccountKey"`
}

// Record is what one server reports: the generation it applied (its
// process runs with that stage's files), refreshed as a heartbeat.
type Record struct {
	Address    string    `json:"address"`
	Generation int64     `json:"generation"`
	Time       time.Time `json:"time"`
}

// Load reads the rotation's state; found is false when no server has
// published it yet.
func Load(ctx context.Context, client kubernetes.Interface, caKey []byte) (state State, found bool, err error) {
	cm, err := client.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, StateConfigMap, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return State{Servers: map[string]Record{}}, false, nil
	}
	if err != nil {
		return state, false, fmt.Errorf("read %s/%s: %w", metav1.NamespaceSystem, StateConfigMap, err)
	}
	state, err = decode(cm, caKey)
	return state, true, err
}

func decode(cm *corev1.ConfigMap, caKey []byte) (State, error) {
	state := State{
		Stage: cm.Data[dataStage], OldCA: []byte(cm.Data[dataOldCA]), NewCA: []byte(cm.Data[dataNewCA]),
		OldSAPub: []byte(cm.Data[dataOldSAPub]), Servers: map[string]Record{}, sealed: map[string][]byte{},
		resourceVersion: cm.ResourceVersion,
	}
	if g := cm.Data[dataGeneration]; g != "" {
		var err error
		if state.Generation, err = strconv.ParseInt(g, 10, 64); err != nil {
			return state, fmt.Errorf("%s: generation %q: %w", StateConfigMap, g, err)
		}
	}
	if name, since, ok := strings.Cut(cm.Data[dataRestarting], "@"); ok {
		state.Restarting = name
		state.RestartingSince, _ = time.Parse(time.RFC3339, since)
	}
	state.Started, _ = time.Parse(time.RFC3339, cm.Data[dataStarted])
	for name, value := range cm.Data {
		if server, ok := strings.CutPrefix(name, serverPrefix); ok {
			var record Record
			if json.Unmarshal([]byte(value), &record) == nil {
				state.Servers[server] = record
			}
		}
	}
	for name, sealed := range cm.BinaryData {
		if !strings.HasPrefix(name, sealedPrefix) {
			continue
		}
		state.sealed[name] = sealed
		if plain, err := pki.OpenWithCAKey(caKey, sealPurpose, sealed); err == nil {
			var keys Keys
			if err := json.Unmarshal(plain, &keys); err != nil {
				return state, fmt.Errorf("decode the new CA's keys: %w", err)
			}
			state.Keys = &keys
		}
	}
	if state.Stage != "" && state.Keys == nil && len(caKey) > 0 {
		return state, fmt.Errorf("the new CA's keys in %s/%s: %w", metav1.NamespaceSystem, StateConfigMap, pki.ErrNotSealedForThisCA)
	}
	return state, nil
}

// SealKeys stores keys sealed under each of caKeys (the old and the new CA
// key): a server opens them before and after its CA key changes.
func (s *State) SealKeys(keys Keys, caKeys ...[]byte) error {
	plain, err := json.Marshal(keys)
	if err != nil {
		return err
	}
	s.sealed = map[string][]byte{}
	for i, caKey := range caKeys {
		sealed, err := pki.SealWithCAKey(caKey, sealPurpose, plain)
		if err != nil {
			return err
		}
		s.sealed[sealedPrefix+strconv.Itoa(i)] = sealed
	}
	s.Keys = &keys
	return nil
}

// Save writes the state back; a conflict means someone changed it since
// it was read (read again and retry).
func (s *State) Save(ctx context.Context, client kubernetes.Interface) error {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: StateConfigMap, Namespace: metav1.NamespaceSystem, ResourceVersion: s.resourceVersion},
		Data: map[string]string{
			dataGeneration: strconv.FormatInt(s.Generation, 10), dataStage: s.Stage,
			dataOldCA: string(s.OldCA), dataNewCA: string(s.NewCA), dataOldSAPub: string(s.OldSAPub),
		},
		BinaryData: map[string][]byte{},
	}
	if !s.Started.IsZero() {
		cm.Data[dataStarted] = s.Started.UTC().Format(time.RFC3339)
	}
	if s.Restarting != "" {
		cm.Data[dataRestarting] = s.Restarting + "@" + s.RestartingSince.UTC().Format(time.RFC3339)
	}
	for name, record := range s.Servers {
		data, err := json.Marshal(record)
		if err != nil {
			return err
		}
		cm.Data[serverPrefix+name] = string(data)
	}
	for name, sealed := range s.sealed {
		cm.BinaryData[name] = sealed
	}
	saved, err := kubeclient.WriteConfigMap(ctx, client, cm)
	if err != nil {
		return err
	}
	s.resourceVersion = saved.ResourceVersion
	return nil
}

// Trust is the CA bundle a stage trusts, the signing CA first.
func (s *State) Trust() []byte {
	switch s.Stage {
	case StageTrusted:
		return concat(s.OldCA, s.NewCA)
	case StageRotated:
		return concat(s.NewCA, s.OldCA)
	default:
		return s.NewCA
	}
}

// ServerFiles are the files of a server's PKI dir (by base name) as the
// stage wants them. The leaf certificates follow on the restart: the
// server re-issues every one its CA did not sign.
func (s *State) ServerFiles() (map[string][]byte, error) {
	if s.Keys == nil {
		return nil, fmt.Errorf("the new CA's keys are not readable on this server: %w", pki.ErrNotSealedForThisCA)
	}
	newPub, err := publicKeyPEM(s.Keys.ServiceAccountKey)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{"ca.crt": s.Trust()}
	switch s.Stage {
	case StageTrusted:
		files["sa.pub"] = concat(s.OldSAPub, newPub)
	case StageRotated, StageFinished:
		files["ca.key"] = s.Keys.CAKey
		files["sa.key"] = s.Keys.ServiceAccountKey
		files["sa.pub"] = concat(newPub, s.OldSAPub)
	}
	if s.Stage == StageFinished {
		files["ca-retired.crt"] = s.OldCA
	}
	return files, nil
}

func publicKeyPEM(keyPEM []byte) ([]byte, error) {
	key, err := keyutil.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("new service-account key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("new service-account key cannot sign")
	}
	return pki.PublicKeyPEM(signer.Public())
}

// concat joins PEM files, each ending in a newline.
func concat(parts ...[]byte) []byte {
	var out bytes.Buffer
	for _, p := range parts {
		p = bytes.TrimSpace(p)
		if len(p) == 0 {
			continue
		}
		out.Write(p)
		out.WriteByte('\n')
	}
	return out.Bytes()
}

// firstCert is the first certificate of a PEM bundle (the signing one).
func firstCert(bundle []byte) []byte {
	block, _ := pem.Decode(bundle)
	if block == nil {
		return nil
	}
	return pem.EncodeToMemory(block)
}
