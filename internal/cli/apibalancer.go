package cli

import (
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/monokube/monokube/internal/loadbalancer"
	"github.com/monokube/monokube/internal/version"
)

// newAPIBalancerCommand is the worker's API load balancer in a process of
// its own, which the worker starts and which outlives the worker's
// restarts. Users never run it; it is hidden.
func newAPIBalancerCommand() *cobra.Command {
	s := &loadbalancer.Standalone{}
	var servers string
	cmd := &cobra.Command{
		Use:    loadbalancer.StandaloneCommand,
		Hidden: true,
		Short:  "The worker's API load balancer process (started by `monokube worker`)",
		Long: `Forwards the node's loopback API port to the API servers. A worker starts it
and it keeps serving while the worker restarts; a newer monokube takes over its
socket without ever refusing a connection. It exits when no worker has been
attached for --linger.`,
		Example: "  monokube api-balancer --socket /run/monokube/x/api-balancer.sock --listen 127.0.0.1:6444 --servers 10.0.0.1:6443",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s.Servers = strings.FieldsFunc(servers, func(r rune) bool { return r == ',' })
			s.Version = version.Version
			if self, err := os.Executable(); err == nil {
				s.Executable = self
			}
			// A hangup from a terminal that started the worker means nothing here.
			signal.Ignore(syscall.SIGHUP)
			ctx, stop := signalContext()
			defer stop()
			return s.Run(ctx)
		},
	}
	flags := cmd.Flags()
	flags.StringVar(&s.Socket, "socket", "", "control socket")
	flags.StringVar(&s.PIDFile, "pid-file", "", "file to record the PID in")
	flags.StringVar(&s.Listen, "listen", "127.0.0.1:6444", "address to listen on")
	flags.StringVar(&servers, "servers", "", "API servers, host:port, comma-separated")
	flags.DurationVar(&s.Linger, "linger", 5*time.Minute, "how long to serve with no worker attached")
	flags.DurationVar(&s.DrainTimeout, "drain-timeout", time.Minute, "how long connections may go on after a handoff")
	_ = cmd.MarkFlagRequired("socket")
	return cmd
}
