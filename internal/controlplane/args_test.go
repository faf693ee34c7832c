package controlplane

import (
	"strings"
	"testing"

	apiserveroptions "k8s.io/kubernetes/cmd/kube-apiserver/app/options"
	cmapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	cmoptions "k8s.io/kubernetes/cmd/kube-controller-manager/app/options"

	"github.com/monokube/monokube/internal/datastore"
	"github.com/monokube/monokube/internal/pki"
)

func testAPIServer(extra Args) *APIServer {
	return &APIServer{
		PKI: pki.Files{Dir: "/data/pki"}, BindAddress: "0.0.0.0", AdvertiseAddress: "10.0.0.1", Port: 6443,
		ServiceCIDR: "10.43.0.0/16", ClusterDomain: "cluster.local",
		Etcd:      func() datastore.Client { return datastore.Client{Endpoints: []string{"unix:///data/run/kine.sock"}} },
		ExtraArgs: extra,
	}
}

func TestAPIServerArgsAreSecureByDefault(t *testing.T) {
	args := testAPIServer(nil).args()
	want := map[string]string{
		"anonymous-auth":           "false",
		"authorization-mode":       "Node,RBAC",
		"enable-admission-plugins": "NodeRestriction",
		"profiling":                "false",
		"secure-port":              "6443",
		"etcd-servers":             "unix:///data/run/kine.sock",
		"service-account-issuer":   "https://kubernetes.default.svc.cluster.local",
		"client-ca-file":           "/data/pki/ca.crt",
		"service-cluster-ip-range": "10.43.0.0/16",
	}
	for flag, value := range want {
		if args[flag] != value {
			t.Errorf("--%s = %q, want %q", flag, args[flag], value)
		}
	}
	if _, ok := args["endpoint-reconciler-type"]; ok {
		t.Errorf("a routable advertise address keeps the endpoint reconciler, got --endpoint-reconciler-type=%s", args["endpoint-reconciler-type"])
	}
	if _, ok := args["encryption-provider-config"]; ok {
		t.Error("encryption at rest is off unless asked for")
	}
}

func TestAPIServerExtraArgsWin(t *testing.T) {
	args := testAPIServer(Args{"authorization-mode": "RBAC", "v": "4"}).args()
	if args["authorization-mode"] != "RBAC" || args["v"] != "4" {
		t.Fatalf("extraArgs did not override: authorization-mode=%q v=%q", args["authorization-mode"], args["v"])
	}
}

func TestAPIServerOnLoopbackSkipsTheEndpointReconciler(t *testing.T) {
	a := testAPIServer(nil)
	a.AdvertiseAddress = "127.0.0.1"
	if got := a.args()["endpoint-reconciler-type"]; got != "none" {
		t.Fatalf("--endpoint-reconciler-type = %q, want none on loopback", got)
	}
}

// Our flags go through upstream's own flag set: a flag renamed or removed
// upstream fails here rather than at a user's start.
func TestUpstreamAcceptsOurFlags(t *testing.T) {
	if err := applyFlags(apiserveroptions.NewServerRunOptions().Flags(), testAPIServer(nil).args(), "spec.api.extraArgs"); err != nil {
		t.Errorf("kube-apiserver: %v", err)
	}
	opts, err := cmoptions.NewKubeControllerManagerOptions()
	if err != nil {
		t.Fatal(err)
	}
	cm := &ControllerManager{PKI: pki.Files{Dir: "/data/pki"}, FlexVolumeDir: "/data/kubelet-plugins/volume/exec", PodCIDR: "10.42.0.0/16", ServiceCIDR: "10.43.0.0/16", Port: 10257}
	flags := opts.Flags(cmapp.KnownControllers(), cmapp.ControllersDisabledByDefault(), cmapp.ControllerAliases())
	if err := applyFlags(flags, cm.args(), "spec.controllerManager.extraArgs"); err != nil {
		t.Errorf("kube-controller-manager: %v", err)
	}
}

func TestUnknownExtraArgNamesTheConfigField(t *testing.T) {
	err := applyFlags(apiserveroptions.NewServerRunOptions().Flags(), Args{"no-such-flag": "1"}, "spec.api.extraArgs")
	if err == nil || !strings.Contains(err.Error(), "spec.api.extraArgs.no-such-flag") {
		t.Fatalf("error = %v, want one naming spec.api.extraArgs.no-such-flag", err)
	}
	err = applyFlags(apiserveroptions.NewServerRunOptions().Flags(), Args{"secure-port": "many"}, "spec.api.extraArgs")
	if err == nil || !strings.Contains(err.Error(), `invalid value "many"`) {
		t.Fatalf("error = %v, want one naming the invalid value", err)
	}
}

func TestControllerManagerArgs(t *testing.T) {
	cm := &ControllerManager{PKI: pki.Files{Dir: "/data/pki"}, FlexVolumeDir: "/data/flex", PodCIDR: "10.42.0.0/16", ServiceCIDR: "10.43.0.0/16",
		Port: 10257, ExtraArgs: Args{"leader-elect": "true"}}
	args := cm.args()
	want := map[string]string{
		"flex-volume-plugin-dir":          "/data/flex",
		"cluster-cidr":                    "10.42.0.0/16",
		"allocate-node-cidrs":             "true",
		"use-service-account-credentials": "true",
		"bind-address":                    "127.0.0.1",
		"leader-elect":                    "true", // extraArgs win
	}
	for flag, value := range want {
		if args[flag] != value {
			t.Errorf("--%s = %q, want %q", flag, args[flag], value)
		}
	}
}

func TestListsControllersIgnoresThePingOnlyAnswer(t *testing.T) {
	before := "[+]ping ok\nhealthz check passed\n"
	after := "[+]persistentvolume-attach-detach-controller ok\n[-]garbage-collector-controller failed: reason withheld\nhealthz check failed\n"
	if listsControllers(before) {
		t.Error("the answer before any controller is built must not count")
	}
	if !listsControllers(after) {
		t.Error("an answer listing controllers, healthy or not, must count")
	}
}
