package fleet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadFileDefaultsAndOrder(t *testing.T) {
	f, err := LoadFile(writeFile(t, `apiVersion: monokube.io/v1beta1
kind: Cluster
metadata:
  name: prod
spec:
  hosts:
    - address: 10.0.0.5
      role: server
    - address: 10.0.0.6
      role: worker
      ssh: {user: ops, keyFile: ~/.ssh/id_ed25519, bastion: {address: jump.example}}
    - address: 10.0.0.7
      role: server+worker
  config:
    storage: {type: etcd}
`))
	if err != nil {
		t.Fatal(err)
	}
	if f.Spec.Provider != ProviderSSH || f.Spec.Hosts[0].Name != "10.0.0.5" || f.Spec.Hosts[0].SSH.User != "root" || f.Spec.Hosts[0].SSH.Port != 22 {
		t.Errorf("defaults: %+v", f.Spec.Hosts[0])
	}
	if b := f.Spec.Hosts[1].SSH.Bastion; b == nil || b.User != "ops" || b.Port != 22 {
		t.Errorf("a bastion takes the host's user and port 22: %+v", b)
	}
	var servers, workers []string
	for _, h := range f.Servers() {
		servers = append(servers, h.Name)
	}
	for _, h := range f.Workers() {
		workers = append(workers, h.Name)
	}
	if strings.Join(servers, ",") != "10.0.0.5,10.0.0.7" || strings.Join(workers, ",") != "10.0.0.6" {
		t.Errorf("servers %v, workers %v", servers, workers)
	}
	if cfg := f.ClusterConfig(); cfg.Metadata.Name != "prod" || cfg.Spec.Storage.Type != "etcd" || cfg.Spec.API.Port != 6443 {
		t.Errorf("the servers' config: %+v", cfg)
	}
}

func TestLoadFileNamesEveryBadFieldWithItsLine(t *testing.T) {
	path := writeFile(t, `apiVersion: monokube.io/v1beta1
kind: Cluster
metadata:
  name: prod
spec:
  hosts:
    - address: 10.0.0.5
      role: master
    - address: 10.0.0.6
      role: server
      labels: ["no equals sign"]
    - role: worker
      adress: 10.0.0.8
  config:
    api: {port: 99999}
`)
	_, err := LoadFile(path)
	if err == nil {
		t.Fatal("a bad cluster file was accepted")
	}
	for _, want := range []string{
		path + ":8: spec.hosts[0].role: must be server, worker or server+worker",
		path + ":11: spec.hosts[1].labels[0]",
		path + ":13: spec.hosts[2].adress: unknown field",
		"spec.hosts[2].address: give the address",
		path + ":15: spec.config.api.port",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestSeveralServersNeedASharedDatastore(t *testing.T) {
	_, err := LoadFile(writeFile(t, "apiVersion: monokube.io/v1beta1\nkind: Cluster\nmetadata: {name: x}\nspec:\n  hosts:\n"+
		"    - {address: a, role: server}\n    - {address: b, role: server+worker}\n"))
	if err == nil || !strings.Contains(err.Error(), "spec.config.storage.type: 2 servers need etcd, postgres or mysql") {
		t.Fatalf("got %v", err)
	}
}

func TestLocalFile(t *testing.T) {
	f := LocalFile("dev", 3, 2)
	if len(f.Servers()) != 3 || len(f.Workers()) != 2 || f.Spec.Config.Storage.Type != "etcd" || f.Spec.Hosts[4].Name != "dev-5" {
		t.Fatalf("%+v", f.Spec)
	}
	if one := LocalFile("dev", 1, 0); one.Spec.Config.Storage.Type != "sqlite" || one.Spec.Hosts[0].Role != RoleServerWorker {
		t.Fatalf("%+v", one.Spec)
	}
}

func TestKubernetesMinor(t *testing.T) {
	if minor, ok := kubernetesMinor("monokube 1845508 (kubernetes v1.37.1, go1.26.8, linux/amd64)\n"); !ok || minor != 37 {
		t.Fatalf("got %d %v", minor, ok)
	}
	if _, ok := kubernetesMinor("garbage"); ok {
		t.Fatal("garbage parsed")
	}
}
