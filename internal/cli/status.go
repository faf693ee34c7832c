package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/kubeclient"
	"github.com/monokube/monokube/internal/node"
	"github.com/monokube/monokube/internal/pki"
	"github.com/monokube/monokube/internal/version"
)

// nodeStatus is what `monokube status` reports.
type nodeStatus struct {
	Role      string `json:"role"`
	Version   string `json:"version"`
	DataDir   string `json:"dataDir"`
	Running   bool   `json:"running"`
	PID       int    `json:"pid,omitempty"`
	Uptime    string `json:"uptime,omitempty"`
	API       string `json:"api,omitempty"`
	APIReady  string `json:"apiReadyz,omitempty"`
	Node      string `json:"node,omitempty"`
	NodeReady string `json:"nodeReady,omitempty"`
	// Components are the running process's, in start order.
	Components []component.State `json:"components,omitempty"`
}

func newStatusCommand(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show whether this machine's server or worker runs, and its API and node state",
		Long: `Show the role (server, server with a node, worker), version, data dir, PID
and uptime of the process that holds --data-dir, the API server's /readyz,
this machine's Node with its Ready condition and each component the process
runs with its state (waiting, starting, ready, failed, stopping, stopped). Exits 1 when nothing runs on the
data dir. Works with or without an installed service.`,
		Example: `  sudo monokube status
  monokube status --data-dir /srv/mk -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			status := collectStatus(cmd.Context(), g)
			switch output {
			case "json":
				out, _ := json.MarshalIndent(status, "", "  ")
				fmt.Fprintln(cmd.OutOrStdout(), string(out))
			case "text":
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				state := "stopped"
				if status.Running {
					state = fmt.Sprintf("running, pid %d, up %s", status.PID, status.Uptime)
				}
				fmt.Fprintf(w, "role:\t%s\nversion:\t%s\ndata dir:\t%s\nstate:\t%s\n", status.Role, status.Version, status.DataDir, state)
				if status.API != "" {
					fmt.Fprintf(w, "api:\t%s (readyz: %s)\n", status.API, status.APIReady)
				}
				if status.Node != "" {
					fmt.Fprintf(w, "node:\t%s %s\n", status.Node, status.NodeReady)
				}
				for i, c := range status.Components {
					label := ""
					if i == 0 {
						label = "components:"
					}
					line := fmt.Sprintf("%s\t%s %s, since %s", label, c.Name, c.State, c.Since.Format(time.RFC3339))
					if c.Error != "" {
						line += ": " + c.Error
					}
					fmt.Fprintln(w, line)
				}
				if err := w.Flush(); err != nil {
					return err
				}
			default:
				return fmt.Errorf("-o must be text or json, got %q", output)
			}
			if !status.Running {
				return errors.New("not running")
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}

func collectStatus(ctx context.Context, g *globals) nodeStatus {
	layout := g.layout
	status := nodeStatus{Version: version.Version, DataDir: layout.Dir, Role: "none"}
	files := pki.Files{Dir: layout.PKIDir()}
	kubeconfig := ""
	switch {
	case fileExists(files.CAKey()):
		status.Role, kubeconfig = "server", files.AdminKubeconfig()
	case fileExists(filepath.Join(layout.AgentPKIDir(), "kubelet.conf")):
		status.Role, kubeconfig = "worker", filepath.Join(layout.AgentPKIDir(), "kubelet.conf")
	}
	record, hasNode, _ := node.LoadRecord(layout)
	if hasNode && status.Role == "server" {
		status.Role = "server with a node"
	}
	status.PID, status.Running = layout.Holder()
	if !status.Running {
		status.PID = 0
		return status
	}
	if uptime, err := processUptime(status.PID); err == nil {
		status.Uptime = uptime.Round(time.Second).String()
	}
	// A process that started before components were published has none.
	status.Components, _ = component.ReadStates(layout.ComponentStates(), status.PID)
	if kubeconfig == "" {
		return status
	}
	config, err := kubeclient.Config(kubeconfig, kubeclient.WithTimeout(5*time.Second))
	if err != nil {
		status.APIReady = err.Error()
		return status
	}
	status.API = config.Host
	client, err := kubeclient.New(kubeconfig, kubeclient.WithTimeout(5*time.Second))
	if err != nil {
		status.APIReady = err.Error()
		return status
	}
	body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	if err != nil {
		status.APIReady = "not ready: " + err.Error()
	} else {
		status.APIReady = string(body)
	}
	if hasNode {
		status.Node, status.NodeReady = record.NodeName, "unknown"
		if n, err := client.CoreV1().Nodes().Get(ctx, record.NodeName, metav1.GetOptions{}); err == nil {
			status.NodeReady = "NotReady"
			if kubeclient.NodeReady(n) {
				status.NodeReady = "Ready"
			}
		}
	}
	return status
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// processUptime is how long pid has run: its start time in clock ticks
// after boot (field 22 of /proc/<pid>/stat; USER_HZ is 100 on Linux)
// against the system's uptime.
func processUptime(pid int) (time.Duration, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: count after its ")".
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(fields) < 20 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ticks, err := strconv.ParseFloat(fields[19], 64)
	if err != nil {
		return 0, err
	}
	raw, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0, err
	}
	var up float64
	if _, err := fmt.Sscanf(string(raw), "%f", &up); err != nil {
		return 0, err
	}
	return time.Duration((up - ticks/100) * float64(time.Second)), nil
}
