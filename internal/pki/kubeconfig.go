package pki

import (
	"fmt"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Kubeconfig builds a kubeconfig for a client certificate, naming the
// cluster, user and context after clusterName and user.
func Kubeconfig(clusterName, server string, caPEM, certPEM, keyPEM []byte, user string) ([]byte, error) {
	config := clientcmdapi.NewConfig()
	config.Clusters[clusterName] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	config.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	contextName := user + "@" + clusterName
	config.Contexts[contextName] = &clientcmdapi.Context{Cluster: clusterName, AuthInfo: user}
	config.CurrentContext = contextName
	out, err := clientcmd.Write(*config)
	if err != nil {
		return nil, fmt.Errorf("encode kubeconfig: %w", err)
	}
	return out, nil
}

// WriteKubeconfig writes a kubeconfig 0600: it holds a private key.
func WriteKubeconfig(path string, kubeconfig []byte) error {
	return writeAtomic(path, kubeconfig, 0o600)
}

// WithServer returns the kubeconfig at path with every cluster's server
// replaced, for handing it to another machine.
func WithServer(path, server string) ([]byte, error) {
	config, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	for _, cluster := range config.Clusters {
		cluster.Server = server
	}
	out, err := clientcmd.Write(*config)
	if err != nil {
		return nil, fmt.Errorf("encode kubeconfig: %w", err)
	}
	return out, nil
}

// kubeconfigPointsAt reports whether the kubeconfig at path exists and
// every cluster in it uses server.
func kubeconfigPointsAt(path, server string) bool {
	config, err := clientcmd.LoadFromFile(path)
	if err != nil || len(config.Clusters) == 0 {
		return false
	}
	for _, cluster := range config.Clusters {
		if cluster.Server != server {
			return false
		}
	}
	return true
}
