package nettools

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Detect chooses the iptables backend for a node whose tools are in dir,
// records it there and says why. The host's firewall, kube-proxy, flannel
// and the policy controller must write the same backend, so it follows
// what the host already uses, in the order kubernetes-sigs/iptables-wrappers
// (used by kube-proxy's own image) decides:
//  1. the chains the kubelet and kube-proxy leave (KUBE-IPTABLES-HINT,
//     KUBE-KUBELET-CANARY) in one backend: a node that ran before;
//  2. the backend with more rules: the host's own firewall;
//  3. the variant of the host's own iptables command, if it has one;
//  4. nft, the default of current distributions.
func Detect(dir string) (mode, reason string, err error) {
	mode, reason = detect(dir)
	if err := os.WriteFile(filepath.Join(dir, ModeFile), []byte(mode+"\n"), 0o644); err != nil {
		return "", "", fmt.Errorf("record iptables backend: %w", err)
	}
	return mode, reason, nil
}

func detect(dir string) (mode, reason string) {
	legacy, nft := saved(dir, Legacy), saved(dir, NFT)
	for _, marker := range []string{"KUBE-IPTABLES-HINT", "KUBE-KUBELET-CANARY"} {
		switch {
		case strings.Contains(nft, marker):
			return NFT, marker + " chain in nft"
		case strings.Contains(legacy, marker):
			return Legacy, marker + " chain in legacy"
		}
	}
	legacyRules, nftRules := rules(legacy), rules(nft)
	switch {
	case legacyRules > nftRules:
		return Legacy, fmt.Sprintf("%d legacy rules, %d nft rules", legacyRules, nftRules)
	case nftRules > 0:
		return NFT, fmt.Sprintf("%d nft rules, %d legacy rules", nftRules, legacyRules)
	}
	if variant := hostVariant(); variant != "" {
		return variant, "the host's iptables command is " + variant
	}
	return NFT, "no rules and no iptables on the host: the default"
}

// saved is what both families' save commands of one backend print; a
// backend the kernel cannot run prints nothing, which counts as no rules.
func saved(dir, backend string) string {
	var out strings.Builder
	for _, family := range []string{"iptables", "ip6tables"} {
		text, _ := exec.Command(filepath.Join(dir, family+"-"+backend+"-save")).Output()
		out.Write(text)
	}
	return out.String()
}

func rules(saved string) int {
	count := 0
	for _, line := range strings.Split(saved, "\n") {
		if strings.HasPrefix(line, "-A ") {
			count++
		}
	}
	return count
}

// hostVariant asks the host's own iptables (not ours) which backend it is:
// "iptables v1.8.9 (nf_tables)" or "iptables v1.8.9 (legacy)".
func hostVariant() string {
	path, err := exec.LookPath("iptables")
	if err != nil {
		return ""
	}
	if resolved, err := filepath.EvalSymlinks(path); err == nil && filepath.Base(resolved) == Launcher {
		return "" // a bundle's, in PATH from an earlier start
	}
	out, err := exec.Command(path, "--version").Output()
	switch {
	case err != nil:
		return ""
	case strings.Contains(string(out), "nf_tables"):
		return NFT
	case strings.Contains(string(out), "legacy"):
		return Legacy
	}
	return ""
}
