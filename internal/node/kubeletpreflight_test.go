package node

import (
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/monokube/monokube/internal/datadir"
)

func TestKubeletPreflightRefusesATakenPort(t *testing.T) {
	layout, err := datadir.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	taken, err := net.Listen("tcp", ":10250")
	if err != nil {
		t.Skipf("port 10250 already in use on this machine: %v", err)
	}
	defer taken.Close()
	err = (&Kubelet{Layout: layout}).preflight()
	if err == nil || !strings.Contains(err.Error(), "port 10250, the kubelet's, is in use") {
		t.Fatalf("preflight = %v, want the taken port named", err)
	}
	taken.Close()
	if err := (&Kubelet{Layout: layout}).preflight(); err != nil {
		t.Fatalf("preflight with the port free: %v", err)
	}
}

func TestKubeletPreflightRefusesADataDirTooLongForItsSockets(t *testing.T) {
	// 74 bytes of data dir is the most the pod-resources socket allows.
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 100))
	layout, err := datadir.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	err = (&Kubelet{Layout: layout}).preflight()
	if err == nil || !strings.Contains(err.Error(), "use a --data-dir at least") {
		t.Fatalf("preflight = %v, want the data dir called too long", err)
	}
}
