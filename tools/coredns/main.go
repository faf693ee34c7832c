// Command coredns is the cluster DNS server of monokube: upstream CoreDNS
// with only the plugins the cluster's Corefile uses, so the image carries no
// cloud-provider SDKs. It is built by our build and carried in the monokube
// binary as the image monokube.io/coredns.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	// The plugins, each registering itself with the server.
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
	_ "github.com/coredns/coredns/plugin/rewrite"
	_ "github.com/coredns/coredns/plugin/template"
	_ "github.com/coredns/coredns/plugin/whoami"
)

// directives is upstream's plugin order (plugin.cfg of the pinned
// release): the order in which plugins see a query, whatever order the
// Corefile lists them in. Names of plugins not linked in are harmless; a
// Corefile that uses one fails with "Unknown directive".
var directives = []string{
	"root", "metadata", "geoip", "cancel", "proxyproto", "quic", "grpc_server", "https",
	"https3", "timeouts", "multisocket", "reload", "nsid", "bufsize", "bind", "debug",
	"trace", "ready", "health", "pprof", "shed", "prometheus", "errors", "log", "dnstap",
	"local", "dns64", "siit", "any", "chaos", "loadbalance", "tsig", "rewrite", "autopath",
	"acl", "cache", "header", "dnssec", "tls", "minimal", "template", "transfer",
	"dynupdate", "hosts", "route53", "azure", "clouddns", "k8s_external", "kubernetes",
	"file", "auto", "secondary", "etcd", "loop", "forward", "grpc", "erratic", "whoami",
	"on", "sign", "view", "nomad",
}

func main() {
	dnsserver.Directives = directives
	coremain.Run()
}
