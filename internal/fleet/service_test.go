package fleet

import (
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
)

// refusingMachine answers every command as a host without an init system
// answers `monokube install`.
type refusingMachine struct{}

func (refusingMachine) Run(context.Context, string) (string, error) {
	return "", errors.New(`"/usr/local/bin/monokube install worker ..." exited with status 1: Error: no supported init system (systemd or OpenRC) is running`)
}
func (refusingMachine) Upload(context.Context, io.Reader, string, os.FileMode) error { return nil }
func (refusingMachine) Download(context.Context, string, io.Writer) error            { return nil }
func (refusingMachine) String() string                                               { return "root@10.0.0.9:22" }
func (refusingMachine) Close() error                                                 { return nil }

func TestHostWithoutInitSystemIsToldToGiveServiceCommands(t *testing.T) {
	err := service{}.install(context.Background(), refusingMachine{}, RoleWorker, nil, "token")
	if err == nil || !strings.Contains(err.Error(), "neither systemd nor OpenRC") || !strings.Contains(err.Error(), "service: {start:") {
		t.Fatalf("install on a host without an init system: %v; want the error to say to give service commands in the cluster file", err)
	}
}
