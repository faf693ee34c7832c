package carotation

import (
	"bytes"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"

	"github.com/monokube/monokube/internal/pki"
)

func newCA(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	ca, err := pki.NewAuthority("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err = keyutil.MarshalPrivateKeyToPEM(ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	return ca.CertPEM, keyPEM
}

// rotationState is a state as `certs rotate-ca` saves it, decoded back
// from its ConfigMap with caKey.
func rotationState(t *testing.T, stage string, caKey []byte) (State, []byte, []byte, []byte) {
	t.Helper()
	oldCA, oldKey := newCA(t)
	newCert, newKey := newCA(t)
	saKey, err := keyutil.MakeEllipticPrivateKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	s := State{Generation: 1, Stage: stage, OldCA: oldCA, NewCA: newCert, OldSAPub: []byte("-----BEGIN PUBLIC KEY-----\nb2xk\n-----END PUBLIC KEY-----\n")}
	if err := s.SealKeys(Keys{CAKey: newKey, ServiceAccountKey: saKey}, oldKey, newKey); err != nil {
		t.Fatal(err)
	}
	if caKey == nil {
		caKey = oldKey
	}
	decoded, err := decode(toConfigMap(t, s), caKey)
	if err != nil {
		t.Fatal(err)
	}
	return decoded, oldKey, newKey, saKey
}

func toConfigMap(t *testing.T, s State) *corev1.ConfigMap {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: StateConfigMap}, Data: map[string]string{
		dataGeneration: "1", dataStage: s.Stage, dataOldCA: string(s.OldCA), dataNewCA: string(s.NewCA), dataOldSAPub: string(s.OldSAPub),
	}, BinaryData: s.sealed}
	return cm
}

func TestKeysOpenWithEitherCAKeyOnly(t *testing.T) {
	s, oldKey, newKey, saKey := rotationState(t, StageTrusted, nil)
	for name, key := range map[string][]byte{"old": oldKey, "new": newKey} {
		got, err := decode(toConfigMap(t, s), key)
		if err != nil || got.Keys == nil || !bytes.Equal(got.Keys.ServiceAccountKey, saKey) {
			t.Errorf("with the %s CA key: %v", name, err)
		}
	}
	_, strangerKey := newCA(t)
	if _, err := decode(toConfigMap(t, s), strangerKey); err == nil {
		t.Error("the new keys opened with another cluster's CA key")
	}
}

func TestServerFilesPerStage(t *testing.T) {
	for _, stage := range []string{StageTrusted, StageRotated, StageFinished} {
		s, _, newKey, saKey := rotationState(t, stage, nil)
		files, err := s.ServerFiles()
		if err != nil {
			t.Fatal(err)
		}
		cas, err := cert.ParseCertsPEM(files["ca.crt"])
		if err != nil {
			t.Fatal(err)
		}
		oldCA, _ := cert.ParseCertsPEM(s.OldCA)
		newCA, _ := cert.ParseCertsPEM(s.NewCA)
		pubs := bytes.Count(files["sa.pub"], []byte("BEGIN PUBLIC KEY"))
		switch stage {
		case StageTrusted:
			// Trusted beside, the old one still signs: first, with its key.
			if len(cas) != 2 || !cas[0].Equal(oldCA[0]) || !cas[1].Equal(newCA[0]) {
				t.Errorf("trusted: ca.crt = %d CAs, want old then new", len(cas))
			}
			if _, ok := files["ca.key"]; ok {
				t.Error("trusted: the CA key changes before the new CA is trusted everywhere")
			}
			if _, ok := files["sa.key"]; ok {
				t.Error("trusted: the service-account key changes before every server verifies the new one")
			}
		case StageRotated:
			if len(cas) != 2 || !cas[0].Equal(newCA[0]) || !cas[1].Equal(oldCA[0]) {
				t.Errorf("rotated: ca.crt = %d CAs, want new then old", len(cas))
			}
			if !bytes.Equal(files["ca.key"], newKey) || !bytes.Equal(files["sa.key"], saKey) {
				t.Error("rotated: the new keys do not sign")
			}
		case StageFinished:
			if len(cas) != 1 || !cas[0].Equal(newCA[0]) {
				t.Errorf("finished: ca.crt = %d CAs, want the new one alone", len(cas))
			}
			if !bytes.Equal(files["ca-retired.crt"], s.OldCA) {
				t.Error("finished: the old CA is not kept as retired (for the token's CA rotated message)")
			}
		}
		if pubs != 2 {
			t.Errorf("%s: sa.pub holds %d keys, want the old and the new", stage, pubs)
		}
	}
}

func TestLagging(t *testing.T) {
	now := time.Now()
	s := State{Servers: map[string]Record{
		"a":    {Generation: 3, Time: now},
		"b":    {Generation: 2, Time: now.Add(-10 * time.Second)},
		"gone": {Generation: 1, Time: now.Add(-time.Hour)},
	}}
	if got := Lagging(s, 3, now); len(got) != 1 || got[0] != "b" {
		t.Errorf("lagging = %v, want [b] (a stopped server is not waited for)", got)
	}
	s.Restarting = "a"
	if got := Lagging(s, 3, now); len(got) != 2 {
		t.Errorf("lagging = %v, want a (still holding its restart turn) and b", got)
	}
	if got := Lagging(State{Servers: map[string]Record{}}, 1, now); len(got) != 1 {
		t.Errorf("with no server reported, lagging = %v; a rotation must not go on without one", got)
	}
}

func TestLaggingNodes(t *testing.T) {
	node := func(name string, ready corev1.ConditionStatus, generation string) corev1.Node {
		return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{NodeAnnotation: generation}},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready}}}}
	}
	lagging, down := LaggingNodes([]corev1.Node{
		node("done", corev1.ConditionTrue, "4"), node("behind", corev1.ConditionTrue, "3"),
		node("off", corev1.ConditionFalse, "1"), node("never", corev1.ConditionTrue, ""),
	}, 4)
	if len(lagging) != 2 || lagging[0] != "behind" || lagging[1] != "never" || len(down) != 1 || down[0] != "off" {
		t.Errorf("lagging %v, down %v", lagging, down)
	}
}
