package config

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Validate checks cfg and returns every problem found, or nil. lines may be
// nil; when given, each problem carries the line of its field.
func Validate(cfg *ClusterConfig, lines Lines) *InvalidError {
	v := validator{lines: lines}
	if cfg.APIVersion != APIVersion {
		v.add("apiVersion", "must be %q, got %q", APIVersion, cfg.APIVersion)
	}
	if cfg.Kind != Kind {
		v.add("kind", "must be %q, got %q", Kind, cfg.Kind)
	}
	v.api(&cfg.Spec.API)
	v.storage(&cfg.Spec.Storage)
	v.network(&cfg.Spec.Network)
	v.apiFamily(&cfg.Spec.API, &cfg.Spec.Network)
	v.podSecurity(&cfg.Spec.API.PodSecurity)
	v.audit(&cfg.Spec.API.Audit)
	v.secretsEncryption(&cfg.Spec.SecretsEncryption)
	if !slices.Contains(Profiles, cfg.Spec.Profile) {
		v.add("spec.profile", `must be "" (none) or %q, got %q`, ProfileCIS, cfg.Spec.Profile)
	}
	v.pki(&cfg.Spec.PKI)
	v.worker(&cfg.Spec.Worker)
	v.addons(&cfg.Spec.Addons)
	v.registries("spec.registries", &cfg.Spec.Registries)
	v.oneOf("spec.network.kubeProxy.mode", cfg.Spec.Network.KubeProxy.Mode, KubeProxyModes)
	v.oneOf("spec.network.provider", cfg.Spec.Network.Provider, NetworkProviders)
	v.oneOf("spec.network.flannel.backend", cfg.Spec.Network.Flannel.Backend, FlannelBackends)
	v.oneOf("spec.network.egressSelectorMode", cfg.Spec.Network.EgressSelectorMode, EgressSelectorModes)
	v.extraArgs("spec.api.extraArgs", cfg.Spec.API.ExtraArgs, apiServerArgRules)
	v.extraArgs("spec.controllerManager.extraArgs", cfg.Spec.ControllerManager.ExtraArgs, controllerManagerArgRules)
	v.extraArgs("spec.scheduler.extraArgs", cfg.Spec.Scheduler.ExtraArgs, schedulerArgRules)
	if len(v.errs) == 0 {
		return nil
	}
	return &InvalidError{Fields: v.errs}
}

type validator struct {
	lines Lines
	errs  []FieldError
}

func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, FieldError{Path: path, Line: v.lines[path], Message: fmt.Sprintf(format, args...)})
}

func (v *validator) oneOf(path, value string, allowed []string) {
	if !slices.Contains(allowed, value) {
		v.add(path, "must be one of %s, got %q", strings.Join(allowed, ", "), value)
	}
}

func (v *validator) api(api *APISpec) {
	if api.Address != "" {
		if _, err := netip.ParseAddr(api.Address); err != nil {
			v.add("spec.api.address", "must be an IP address, got %q", api.Address)
		}
	}
	if api.Port < 1 || api.Port > 65535 {
		v.add("spec.api.port", "must be between 1 and 65535, got %d", api.Port)
	}
	for i, san := range api.SANs {
		if _, err := netip.ParseAddr(san); err == nil {
			continue
		}
		if errs := validation.IsDNS1123Subdomain(strings.TrimPrefix(san, "*.")); len(errs) > 0 {
			v.add(fmt.Sprintf("spec.api.sans[%d]", i), "must be an IP address or DNS name, got %q", san)
		}
	}
}

func (v *validator) network(network *NetworkSpec) {
	pods := v.ranges("spec.network.podCIDR", network.PodCIDR)
	services := v.ranges("spec.network.serviceCIDR", network.ServiceCIDR)
	v.overlapping(pods, services)
	v.sameFamilies(pods, services)
	v.rangeSizes(pods, services)
	if errs := validation.IsDNS1123Subdomain(network.ClusterDomain); len(errs) > 0 {
		v.add("spec.network.clusterDomain", "must be a DNS domain like cluster.local: %s", strings.Join(errs, "; "))
	}
	dns, err := netip.ParseAddr(network.ClusterDNS)
	switch {
	case err != nil:
		v.add("spec.network.clusterDNS", "must be an IP address, got %q", network.ClusterDNS)
	case len(services) > 0 && !slices.ContainsFunc(services, func(s netip.Prefix) bool { return s.Contains(dns) }):
		v.add("spec.network.clusterDNS", "%s is outside spec.network.serviceCIDR %s", dns, describe(services))
	}
}

// apiFamily insists that an API address given is of the primary service
// family: the API server advertises itself in the "kubernetes" Service.
func (v *validator) apiFamily(api *APISpec, network *NetworkSpec) {
	addr, err := netip.ParseAddr(api.Address)
	services := CIDRs(network.ServiceCIDR)
	if err != nil || len(services) == 0 {
		return
	}
	primary, err := netip.ParsePrefix(services[0])
	if err == nil && family(addr) != family(primary.Addr()) {
		v.add("spec.api.address", "%s is %s but the first range of spec.network.serviceCIDR (%s) is %s: the API server advertises itself in that family",
			addr, family(addr), primary, family(primary.Addr()))
	}
}

// cidr parses a CIDR, insisting on the network address so "10.42.0.1/16"
// (a common slip) is reported instead of silently widened.
func (v *validator) cidr(path, value string) netip.Prefix {
	prefix, err := netip.ParsePrefix(value)
	if err != nil {
		v.add(path, "must be a CIDR like 10.42.0.0/16, got %q", value)
		return netip.Prefix{}
	}
	if prefix.Masked() != prefix {
		v.add(path, "%s is not a network address; did you mean %s?", value, prefix.Masked())
		return netip.Prefix{}
	}
	return prefix
}

func (v *validator) worker(worker *WorkerSpec) {
	for _, problem := range worker.Problems() {
		path := "spec.worker." + problem.Field
		if problem.Index >= 0 {
			path = fmt.Sprintf("%s[%d]", path, problem.Index)
		}
		v.add(path, "%s", problem.Message)
	}
}

var podSecurityLevels = []string{"privileged", "baseline", "restricted"}

func (v *validator) podSecurity(ps *PodSecuritySpec) {
	for _, field := range []struct{ name, value string }{{"enforce", ps.Enforce}, {"audit", ps.Audit}, {"warn", ps.Warn}} {
		if !slices.Contains(podSecurityLevels, field.value) {
			v.add("spec.api.podSecurity."+field.name, "must be one of %s, got %q", strings.Join(podSecurityLevels, ", "), field.value)
		}
	}
}

func (v *validator) audit(spec *AuditSpec) {
	if spec.MaxSizeMB < 1 {
		v.add("spec.api.audit.maxSizeMB", "must be at least 1, got %d", spec.MaxSizeMB)
	}
	if spec.MaxBackups < 0 {
		v.add("spec.api.audit.maxBackups", "must not be negative, got %d", spec.MaxBackups)
	}
	if spec.MaxAgeDays < 0 {
		v.add("spec.api.audit.maxAgeDays", "must not be negative, got %d", spec.MaxAgeDays)
	}
	// The files are read when the server starts; naming them here says
	// which field is wrong before anything runs.
	for _, file := range []struct{ field, path string }{{"policy", spec.Policy}, {"webhook", spec.Webhook}} {
		if file.path == "" {
			continue
		}
		if info, err := os.Stat(file.path); err != nil || info.IsDir() {
			v.add("spec.api.audit."+file.field, "must be a readable file, got %q", file.path)
		}
	}
}

// encryptionProviders are encryption.Providers (config does not import it).
var encryptionProviders = []string{"secretbox", "aescbc", "aesgcm", "kms"}

func (v *validator) secretsEncryption(spec *SecretsEncryptionSpec) {
	v.oneOf("spec.secretsEncryption.provider", spec.Provider, encryptionProviders)
	if timeout, err := time.ParseDuration(spec.KMS.Timeout); err != nil || timeout <= 0 {
		v.add("spec.secretsEncryption.kms.timeout", "must be a positive duration like 3s, got %q", spec.KMS.Timeout)
	}
	if spec.Provider != "kms" {
		return
	}
	if path, ok := strings.CutPrefix(spec.KMS.Endpoint, "unix://"); !ok || !strings.HasPrefix(path, "/") {
		v.add("spec.secretsEncryption.kms.endpoint", `must be the plugin's socket as "unix:///path/to/socket" with provider kms, got %q`, spec.KMS.Endpoint)
	}
}

// KMSTimeout is spec.secretsEncryption.kms.timeout parsed; call it after Validate.
func (s SecretsEncryptionSpec) KMSTimeout() time.Duration {
	timeout, _ := time.ParseDuration(s.KMS.Timeout)
	return timeout
}

func (v *validator) pki(spec *PKISpec) {
	validity, err := time.ParseDuration(spec.LeafValidity)
	switch {
	case err != nil:
		v.add("spec.pki.leafValidity", "must be a duration like 8760h, got %q", spec.LeafValidity)
	case validity < time.Minute:
		v.add("spec.pki.leafValidity", "must be at least 1m, got %s", validity)
	}
	if spec.RenewPercentLeft < 1 || spec.RenewPercentLeft > 99 {
		v.add("spec.pki.renewPercentLeft", "must be between 1 and 99, got %d", spec.RenewPercentLeft)
	}
}

// Validity is spec.pki.leafValidity parsed; call it after Validate.
func (s PKISpec) Validity() time.Duration {
	validity, _ := time.ParseDuration(s.LeafValidity)
	return validity
}

func (v *validator) extraArgs(path string, args map[string]string, rules map[string]func(value string) string) {
	for name, value := range args {
		if strings.HasPrefix(name, "-") || name == "" || strings.ContainsAny(name, " =") {
			v.add(path+"."+name, "must be a flag name without leading dashes, like %q", strings.TrimLeft(name, "-"))
			continue
		}
		if rule := rules[name]; rule != nil {
			if problem := rule(value); problem != "" {
				v.add(path+"."+name, "%s", problem)
			}
		}
	}
}

// Flags whose values end the whole process from inside an upstream
// component (internal/component/fatal-exits.md: A3, S2, S3, C2): refused
// here with the reason instead.
var (
	apiServerArgRules = map[string]func(string) string{
		"endpoint-reconciler-type": oneOf("lease", "master-count", "none"),
	}
	controllerManagerArgRules = map[string]func(string) string{
		"leader-elect": setByMonokube,
	}
	schedulerArgRules = map[string]func(string) string{
		"leader-elect": setByMonokube,
		"write-config-to": func(string) string {
			return "is not supported: the scheduler writes the file and exits, with the control plane half up"
		},
	}
)

func oneOf(values ...string) func(string) string {
	return func(value string) string {
		if slices.Contains(values, value) {
			return ""
		}
		return fmt.Sprintf("must be one of %s, got %q", strings.Join(values, ", "), value)
	}
}

// setByMonokube refuses leader-elect: monokube turns it on exactly when
// several servers may run (etcd, PostgreSQL, MySQL); on a single SQLite
// server a lease lost to a slow disk would end the process.
func setByMonokube(string) string {
	return "is set by monokube (on when spec.storage allows several servers); remove it"
}

// FirstServiceIP is the address the "kubernetes" Service gets: the first
// host address of the service range.
func FirstServiceIP(serviceCIDR string) (net.IP, error) {
	prefix, err := netip.ParsePrefix(serviceCIDR)
	if err != nil {
		return nil, fmt.Errorf("parse service CIDR: %w", err)
	}
	return net.IP(prefix.Masked().Addr().Next().AsSlice()), nil
}
