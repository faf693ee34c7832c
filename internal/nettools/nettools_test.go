package nettools

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestResolveFollowsTheRecordedBackend(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, mode, want string
	}{
		{"iptables", NFT, "xtables-nft-multi"},
		{"iptables-restore", Legacy, "xtables-legacy-multi"},
		{"ip6tables-save", NFT, "xtables-nft-multi"},
		{"iptables-legacy-save", NFT, "xtables-legacy-multi"},
		{"ip6tables-nft", Legacy, "xtables-nft-multi"},
		{"nft", Legacy, "nft"},
		{"ipset", NFT, "ipset"},
		{"conntrack", NFT, "conntrack"},
	}
	for _, c := range cases {
		if err := os.WriteFile(filepath.Join(dir, ModeFile), []byte(c.mode+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := resolve(c.name, Mode(dir))
		if err != nil || got != c.want {
			t.Errorf("%s in %s mode: %q, %v; want %q", c.name, c.mode, got, err, c.want)
		}
	}
	if _, err := resolve("bash", NFT); err == nil {
		t.Error("an unknown name resolved")
	}
}

func TestModeDefaultsToNFT(t *testing.T) {
	if mode := Mode(t.TempDir()); mode != NFT {
		t.Errorf("no mode file: %s", mode)
	}
}

func TestLinkMakesEveryName(t *testing.T) {
	dir := t.TempDir()
	for range 2 { // a second run replaces the links
		if err := Link(dir); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"iptables", "iptables-nft-restore", "ip6tables-legacy-save", "nft", "ipset", "conntrack"} {
		target, err := os.Readlink(filepath.Join(dir, name))
		if err != nil || target != Launcher {
			t.Errorf("%s links to %q (%v)", name, target, err)
		}
	}
	if !slices.IsSorted(Names()) || len(Names()) != 21 {
		t.Errorf("names: %v", Names())
	}
}

func TestRulesCountsAppendedRules(t *testing.T) {
	saved := "# Generated\n*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -j MASQUERADE\n-A POSTROUTING -j RETURN\nCOMMIT\n"
	if n := rules(saved); n != 2 {
		t.Errorf("%d rules, want 2", n)
	}
}
