package server

import (
	"fmt"
	"net"
	"os"
	"strconv"

	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/config"
)

// addresses are where the API server listens, what it tells the cluster,
// and what its certificate must cover.
type addresses struct {
	bind      string
	advertise string
	// localURL is how this machine's own clients reach the API server.
	localURL string
	sanDNS   []string
	sanIPs   []net.IP
}

func resolveAddresses(spec config.Spec) (addresses, error) {
	api := spec.API
	a := addresses{bind: api.Address, advertise: api.Address}
	local := api.Address
	if api.Address == "" {
		a.bind = "0.0.0.0"
		local = "127.0.0.1"
		host, err := utilnet.ChooseHostInterface()
		if err != nil {
			// A machine (or test namespace) without a default route still
			// gets a working single-node control plane on loopback.
			klog.InfoS("No default route; advertising the API server on loopback", "reason", err.Error())
			a.advertise = "127.0.0.1"
		} else {
			a.advertise = host.String()
		}
		// The API server advertises itself in the "kubernetes" Service,
		// so in the primary service family (IPv6 for an IPv6-only cluster).
		if families := spec.Network.IPFamilies(); len(families) > 0 && config.IPFamily(net.ParseIP(a.advertise)) != families[0] {
			other, err := globalAddress(families[0])
			if err != nil {
				return a, err
			}
			a.advertise = other
		}
	}
	a.localURL = "https://" + net.JoinHostPort(local, strconv.Itoa(api.Port))

	serviceIPs, err := config.FirstServiceIPs(spec.Network.ServiceCIDR)
	if err != nil {
		return a, err
	}
	domain := spec.Network.ClusterDomain
	a.sanDNS = []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc." + domain}
	if hostname, err := os.Hostname(); err == nil {
		a.sanDNS = append(a.sanDNS, hostname)
	}
	a.sanIPs = append([]net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback, net.ParseIP(a.advertise)}, serviceIPs...)
	if api.Address == "" {
		// Listening everywhere: any of this machine's addresses may be used.
		hostIPs, err := interfaceIPs()
		if err != nil {
			return a, err
		}
		a.sanIPs = append(a.sanIPs, hostIPs...)
	}
	for _, san := range api.SANs {
		if ip := net.ParseIP(san); ip != nil {
			a.sanIPs = append(a.sanIPs, ip)
		} else {
			a.sanDNS = append(a.sanDNS, san)
		}
	}
	return a, nil
}

func interfaceIPs() ([]net.IP, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list interface addresses: %w", err)
	}
	var ips []net.IP
	for _, addr := range addrs {
		if ipNet, ok := addr.(*net.IPNet); ok && ipNet.IP.IsGlobalUnicast() {
			ips = append(ips, ipNet.IP)
		}
	}
	return ips, nil
}

// globalAddress is this machine's first global address of the family, for
// an API server that must advertise one (spec.api.address names one).
func globalAddress(fam string) (string, error) {
	ips, err := interfaceIPs()
	if err != nil {
		return "", err
	}
	for _, ip := range ips {
		if config.IPFamily(ip) == fam {
			return ip.String(), nil
		}
	}
	return "", fmt.Errorf("the cluster's first service range is %s but this machine has no global %s address to advertise the API server on: set spec.api.address", fam, fam)
}
