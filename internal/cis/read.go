package cis

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	kubeletv1beta1 "k8s.io/kubelet/config/v1beta1"
	"sigs.k8s.io/yaml"

	"github.com/monokube/monokube/internal/backup"
	"github.com/monokube/monokube/internal/controlplane"
	"github.com/monokube/monokube/internal/datadir"
	"github.com/monokube/monokube/internal/pki"
)

// Read gathers the inputs from a running server's data dir. The flags are
// recorded by the server as its components start; without them there is
// no running server to check.
func Read(layout datadir.Layout) (Inputs, error) {
	flags, err := controlplane.ReadFlagRecord(layout.ComponentFlags())
	if errors.Is(err, os.ErrNotExist) {
		return readWorker(layout)
	}
	if err != nil {
		return Inputs{}, err
	}
	in := Inputs{
		APIServer: Flags(flags["apiserver"]), ControllerManager: Flags(flags["controller-manager"]), Scheduler: Flags(flags["scheduler"]),
	}
	if in.PodSecurityEnforce, err = podSecurityEnforce(in.APIServer["admission-control-config-file"]); err != nil {
		return in, err
	}
	if file := in.APIServer["encryption-provider-config"]; file != "" {
		if in.EncryptionProviders, err = readEncryptionProviders(file); err != nil {
			return in, err
		}
	}
	if in.Node, err = readNode(layout); err != nil {
		return in, err
	}
	in.Files = fileModes(layout)
	return in, nil
}

// podSecurityEnforce reads the PodSecurity plugin's default enforce level.
func podSecurityEnforce(file string) (string, error) {
	var admission struct {
		Plugins []struct {
			Name          string `json:"name"`
			Configuration struct {
				Defaults struct {
					Enforce string `json:"enforce"`
				} `json:"defaults"`
			} `json:"configuration"`
		} `json:"plugins"`
	}
	if err := readYAML(file, &admission); err != nil || file == "" {
		return "", err
	}
	for _, plugin := range admission.Plugins {
		if plugin.Name == "PodSecurity" {
			return plugin.Configuration.Defaults.Enforce, nil
		}
	}
	return "", nil
}

// readEncryptionProviders lists the Secrets' providers by kind, in order.
func readEncryptionProviders(file string) ([]string, error) {
	var config struct {
		Resources []struct {
			Resources []string                     `json:"resources"`
			Providers []map[string]json.RawMessage `json:"providers"`
		} `json:"resources"`
	}
	if err := readYAML(file, &config); err != nil {
		return nil, err
	}
	var kinds []string
	for _, resource := range config.Resources {
		for _, provider := range resource.Providers {
			for kind := range provider {
				kinds = append(kinds, kind)
			}
		}
	}
	return kinds, nil
}

// readWorker gathers a worker's inputs: its node's settings and files
// (CIS section 4); a worker has no control plane to check.
func readWorker(layout datadir.Layout) (Inputs, error) {
	n, err := readNode(layout)
	if err != nil {
		return Inputs{}, err
	}
	if n == nil {
		return Inputs{}, fmt.Errorf("neither a server nor a worker has run on %s since this version (%s and %s are missing): start it, then check",
			layout.Dir, layout.ComponentFlags(), layout.KubeletConfigFile())
	}
	return Inputs{Worker: true, Node: n, Files: statFiles([]File{
		{ID: "4.1.3-4.1.4", Role: "kube-proxy's kubeconfig", Path: n.KubeProxyKubeconfig, Most: 0o600},
		{ID: "4.1.5-4.1.6", Role: "the kubelet's kubeconfig", Path: filepath.Join(layout.AgentPKIDir(), "kubelet.conf"), Most: 0o600},
		{ID: "4.1.7", Role: "the kubelet's client CA file", Path: n.ClientCAFile, Most: 0o600},
		{ID: "4.1.9-4.1.10", Role: "the kubelet's config file", Path: layout.KubeletConfigFile(), Most: 0o600},
	}, "(not set)")}, nil
}

func readNode(layout datadir.Layout) (*Node, error) {
	var kubelet kubeletv1beta1.KubeletConfiguration
	if err := readYAML(layout.KubeletConfigFile(), &kubelet); errors.Is(err, os.ErrNotExist) {
		return nil, nil // a server without a node
	} else if err != nil {
		return nil, err
	}
	var proxy struct {
		MetricsBindAddress string `json:"metricsBindAddress"`
		ClientConnection   struct {
			Kubeconfig string `json:"kubeconfig"`
		} `json:"clientConnection"`
	}
	if err := readYAML(layout.KubeProxyConfigFile(), &proxy); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	n := &Node{
		AuthorizationMode: string(kubelet.Authorization.Mode), ClientCAFile: kubelet.Authentication.X509.ClientCAFile,
		TLSCertFile: kubelet.TLSCertFile, TLSCipherSuites: kubelet.TLSCipherSuites, ServerTLSBootstrap: kubelet.ServerTLSBootstrap,
		RotateCertificates: kubelet.RotateCertificates, ProtectKernelDefaults: kubelet.ProtectKernelDefaults,
		KubeProxyMetricsBindAddress: proxy.MetricsBindAddress, KubeProxyKubeconfig: proxy.ClientConnection.Kubeconfig,
		AnonymousAuth: "true (default)", MakeIPTablesUtilChains: true,
	}
	if enabled := kubelet.Authentication.Anonymous.Enabled; enabled != nil {
		n.AnonymousAuth = fmt.Sprint(*enabled)
	}
	if kubelet.ReadOnlyPort != 0 {
		n.ReadOnlyPort = kubelet.ReadOnlyPort
	}
	if kubelet.StreamingConnectionIdleTimeout.Duration != 0 {
		n.StreamingConnectionIdleTimeout = kubelet.StreamingConnectionIdleTimeout.Duration.String()
	}
	if chains := kubelet.MakeIPTablesUtilChains; chains != nil {
		n.MakeIPTablesUtilChains = *chains
	}
	if kubelet.PodPidsLimit != nil {
		n.PodPidsLimit = *kubelet.PodPidsLimit
	}
	return n, nil
}

// fileModes are the files of CIS 1.1 that a monokube server has: its
// config file stands for the components' pod specs (1.1.1-1.1.8: none
// here), its datastore dir for etcd's (1.1.11-12), and the kubeconfigs and
// keys are its own.
func fileModes(layout datadir.Layout) []File {
	files := pki.Files{Dir: layout.PKIDir()}
	var configFile string
	if record, ok, err := backup.RecordedServer(layout); ok && err == nil {
		configFile = record.ConfigFile
	}
	datastore := filepath.Dir(layout.DBFile())
	if _, err := os.Stat(layout.EtcdDir()); err == nil {
		datastore = layout.EtcdDir()
	}
	list := []File{
		{ID: "1.1.1-1.1.8", Role: "the control plane's config file (it has no pod specs)", Path: configFile, Most: 0o600},
		{ID: "1.1.11-1.1.12", Role: "the datastore directory", Path: datastore, Most: 0o700},
		{ID: "1.1.13-1.1.14", Role: "the admin kubeconfig", Path: files.AdminKubeconfig(), Most: 0o600},
		{ID: "1.1.15-1.1.16", Role: "the scheduler's kubeconfig", Path: files.Kubeconfig(pki.Scheduler), Most: 0o600},
		{ID: "1.1.17-1.1.18", Role: "the controller-manager's kubeconfig", Path: files.Kubeconfig(pki.ControllerManager), Most: 0o600},
		{ID: "1.1.19", Role: "the PKI directory", Path: layout.PKIDir(), Most: 0o700},
		{ID: "1.1.21", Role: "the CA's private key", Path: files.CAKey(), Most: 0o600},
	}
	return statFiles(list, "(the server ran on its defaults, with no config file)")
}

// statFiles fills in each file's mode and owner; unset names read as
// unnamed.
func statFiles(list []File, unnamed string) []File {
	for i := range list {
		f := &list[i]
		var stat syscall.Stat_t
		if f.Path == "" || syscall.Stat(f.Path, &stat) != nil {
			f.Missing = true
			if f.Path == "" {
				f.Path = unnamed
			}
			continue
		}
		f.Mode, f.UID = stat.Mode&0o7777, stat.Uid
	}
	return list
}

func readYAML(file string, into any) error {
	if file == "" {
		return nil
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(raw, into); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}
