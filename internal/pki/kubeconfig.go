package pki

import (
	"fmt"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Kubeconfig builds a kubeconfig embedding a client certificate, naming the
// cluster, user and context after clusterName and user: one that can be
// handed to another machine.
func Kubeconfig(clusterName, server string, caPEM, certPEM, keyPEM []byte, user string) ([]byte, error) {
	return encodeKubeconfig(clusterName, user,
		&clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM},
		&clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM})
}

// FileKubeconfig builds a kubeconfig that names its CA and credential files
// instead of embedding them: client-go re-reads the files (see
// ReloadInterval), so a renewed certificate reaches a running client.
func FileKubeconfig(clusterName, server, caFile, certFile, keyFile, user string) ([]byte, error) {
	return encodeKubeconfig(clusterName, user,
		&clientcmdapi.Cluster{Server: server, CertificateAuthority: caFile},
		&clientcmdapi.AuthInfo{ClientCertificate: certFile, ClientKey: keyFile})
}

func encodeKubeconfig(clusterName, user string, cluster *clientcmdapi.Cluster, auth *clientcmdapi.AuthInfo) ([]byte, error) {
	config := clientcmdapi.NewConfig()
	config.Clusters[clusterName] = cluster
	config.AuthInfos[user] = auth
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
	// A kubeconfig handed on must carry its credentials, not name files
	// of this machine.
	if err := clientcmdapi.FlattenConfig(config); err != nil {
		return nil, fmt.Errorf("embed kubeconfig credentials: %w", err)
	}
	out, err := clientcmd.Write(*config)
	if err != nil {
		return nil, fmt.Errorf("encode kubeconfig: %w", err)
	}
	return out, nil
}
