package encryption

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/monokube/monokube/internal/kubeclient"
)

// ConfigMapName is where servers agree on the keys (kube-system).
const ConfigMapName = "monokube-secrets-encryption"

// Stages of a rotation, as k3s names what its secrets-encrypt shows.
const (
	// StageStart: one write key, nothing under way.
	StageStart = "start"
	// StagePrepared: a new key is on every server, for reading only.
	StagePrepared = "prepared"
	// StageRotated: the new key writes; the old one still reads.
	StageRotated = "rotated"
	// StageReencrypting: every Secret is being rewritten.
	StageReencrypting = "reencrypting"
	// StageReencrypted: every Secret is under the write key; old keys gone.
	StageReencrypted = "reencrypted"
)

const (
	dataStage      = "stage"
	dataGeneration = "generation"
	dataKeys       = "keys"
	// dataKeysNext holds the keys sealed under the next CA key during a
	// CA rotation.
	dataKeysNext = "keys.next"
	serverPrefix = "server."
)

// State is the cluster's copy of the keys and how far a rotation got.
// Generation grows with every change a server must apply.
type State struct {
	Generation int64
	Stage      string
	Keys       []Key
	Servers    map[string]Record

	resourceVersion string
	// sealed and sealedNext are the keys as stored; opened is what they
	// held, so a Save that changes no key keeps both copies.
	sealed, sealedNext []byte
	opened             []Key
}

// Record is what one server reports: the generation whose keys its API
// server has loaded (Loaded: the running API server's configuration hash
// is that of the file), and how that server would make a new key.
type Record struct {
	Address    string    `json:"address"`
	Generation int64     `json:"generation"`
	Loaded     bool      `json:"loaded"`
	WriteKey   string    `json:"writeKey"`
	Enabled    bool      `json:"enabled"`
	Settings   Settings  `json:"settings"`
	Time       time.Time `json:"time"`
}

// Load reads the cluster's state; found is false before any server
// published it.
func Load(ctx context.Context, client kubernetes.Interface, caKey []byte) (state State, found bool, err error) {
	cm, err := client.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, ConfigMapName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return state, false, nil
	}
	if err != nil {
		return state, false, fmt.Errorf("read %s/%s: %w", metav1.NamespaceSystem, ConfigMapName, err)
	}
	state, err = decode(cm, caKey)
	return state, true, err
}

func decode(cm *corev1.ConfigMap, caKey []byte) (State, error) {
	state := State{Stage: cm.Data[dataStage], Servers: map[string]Record{}, resourceVersion: cm.ResourceVersion}
	var err error
	if state.Generation, err = strconv.ParseInt(cm.Data[dataGeneration], 10, 64); err != nil {
		return state, fmt.Errorf("%s: generation %q: %w", ConfigMapName, cm.Data[dataGeneration], err)
	}
	state.sealed, state.sealedNext = cm.BinaryData[dataKeys], cm.BinaryData[dataKeysNext]
	state.Keys, err = unseal(caKey, state.sealed)
	if err != nil && state.sealedNext != nil {
		// This server already holds the CA key a rotation brings.
		state.Keys, err = unseal(caKey, state.sealedNext)
	}
	if err != nil {
		return state, err
	}
	state.opened = slices.Clone(state.Keys)
	for name, value := range cm.Data {
		server, ok := strings.CutPrefix(name, serverPrefix)
		if !ok {
			continue
		}
		var record Record
		if err := json.Unmarshal([]byte(value), &record); err == nil {
			state.Servers[server] = record
		}
	}
	return state, nil
}

// Save writes state back; it fails with a conflict when someone changed
// it since it was read (read again and retry).
func (s *State) Save(ctx context.Context, client kubernetes.Interface, caKey []byte) error {
	if s.sealed == nil || !reflect.DeepEqual(s.Keys, s.opened) {
		if s.sealedNext != nil {
			return errors.New("a CA rotation is under way: the encryption keys change only after `monokube certs rotate-ca --finish`")
		}
		sealed, err := seal(caKey, s.Keys)
		if err != nil {
			return err
		}
		s.sealed, s.opened = sealed, slices.Clone(s.Keys)
	}
	return s.save(ctx, client)
}

// save writes the state with the keys as sealed.
func (s *State) save(ctx context.Context, client kubernetes.Interface) error {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: ConfigMapName, Namespace: metav1.NamespaceSystem, ResourceVersion: s.resourceVersion},
		Data:       map[string]string{dataStage: s.Stage, dataGeneration: strconv.FormatInt(s.Generation, 10)},
		BinaryData: map[string][]byte{dataKeys: s.sealed},
	}
	if s.sealedNext != nil {
		cm.BinaryData[dataKeysNext] = s.sealedNext
	}
	for name, record := range s.Servers {
		data, err := json.Marshal(record)
		if err != nil {
			return err
		}
		cm.Data[serverPrefix+name] = string(data)
	}
	saved, err := kubeclient.WriteConfigMap(ctx, client, cm)
	if err != nil {
		return err
	}
	s.resourceVersion = saved.ResourceVersion
	return nil
}
