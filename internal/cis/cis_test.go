package cis

import (
	"strings"
	"testing"
)

func find(t *testing.T, results []Result, id string) Result {
	t.Helper()
	for _, r := range results {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("no control %s", id)
	return Result{}
}

// Upstream's defaults are what an unset flag means: profiling is on
// unless switched off, the controller-manager listens everywhere.
func TestAnUnsetFlagHasUpstreamsDefault(t *testing.T) {
	results := Check(Inputs{APIServer: Flags{}, ControllerManager: Flags{}, Scheduler: Flags{"profiling": "false", "bind-address": "127.0.0.1"}})
	for id, want := range map[string]Status{"1.2.1": Fail, "1.2.15": Fail, "1.2.21": Pass, "1.3.7": Fail, "1.4.1": Pass, "1.4.2": Pass, "1.2.12": Pass} {
		if got := find(t, results, id); got.Status != want {
			t.Errorf("%s: %s (%s), want %s", id, got.Status, got.Reason, want)
		}
	}
}

func TestCiphersMustAllBeStrong(t *testing.T) {
	for _, tc := range []struct {
		suites string
		want   Status
	}{
		{"", Fail},
		{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", Fail},
		{"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", Pass},
	} {
		got := find(t, Check(Inputs{APIServer: Flags{"tls-cipher-suites": tc.suites}}), "1.2.29")
		if got.Status != tc.want {
			t.Errorf("%q: %s (%s), want %s", tc.suites, got.Status, got.Reason, tc.want)
		}
	}
}

// kine on a unix socket has no TLS; an etcd over the network must.
func TestDatastoreTLSDependsOnTheTransport(t *testing.T) {
	kine := find(t, Check(Inputs{APIServer: Flags{"etcd-servers": "unix:///var/lib/monokube/run/kine.sock"}}), "1.2.23")
	etcd := find(t, Check(Inputs{APIServer: Flags{"etcd-servers": "https://10.0.0.1:2379"}}), "1.2.23")
	if kine.Status != Manual || etcd.Status != Fail || !strings.Contains(etcd.Reason, "--etcd-certfile") {
		t.Errorf("kine: %+v; etcd without certificates: %+v", kine, etcd)
	}
}

func TestEncryptionMustWriteWithAKey(t *testing.T) {
	for _, tc := range []struct {
		providers []string
		want      Status
	}{{nil, Fail}, {[]string{"identity", "secretbox"}, Fail}, {[]string{"secretbox", "identity"}, Pass}, {[]string{"kms"}, Pass}} {
		if got := find(t, Check(Inputs{EncryptionProviders: tc.providers}), "1.2.28"); got.Status != tc.want {
			t.Errorf("%v: %s, want %s", tc.providers, got.Status, tc.want)
		}
	}
}

func TestFilesLooserThanAllowedFail(t *testing.T) {
	results := Check(Inputs{Files: []File{
		{ID: "a", Path: "/x", Most: 0o600, Mode: 0o644},
		{ID: "b", Path: "/y", Most: 0o600, Mode: 0o600, UID: 1000},
		{ID: "c", Path: "/z", Most: 0o700, Mode: 0o700},
		{ID: "d", Path: "/w", Most: 0o600, Missing: true},
	}})
	for id, want := range map[string]Status{"a": Fail, "b": Fail, "c": Pass, "d": Manual} {
		if got := find(t, results, id); got.Status != want {
			t.Errorf("%s: %s (%s), want %s", id, got.Status, got.Reason, want)
		}
	}
}

func TestAWorkerIsCheckedOnItsNodeAlone(t *testing.T) {
	results := Check(Inputs{Worker: true, Node: &Node{AnonymousAuth: "false"}, Files: []File{{ID: "4.1.7", Path: "/ca", Most: 0o600, Mode: 0o644}}})
	if got := find(t, results, "4.1.7"); got.Status != Fail {
		t.Errorf("a 644 client CA file: %s, want FAIL", got.Status)
	}
	if got := find(t, results, "4.2.1"); got.Status != Pass {
		t.Errorf("4.2.1: %s, want PASS", got.Status)
	}
	for _, r := range results {
		if !strings.HasPrefix(r.ID, "4.") {
			t.Errorf("control %s checked on a worker", r.ID)
		}
	}
}
