package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/monokube/monokube/internal/join"
	"github.com/monokube/monokube/internal/kubeclient"
	"github.com/monokube/monokube/internal/loadbalancer"
	"github.com/monokube/monokube/internal/version"
)

// balancerAddress is where the worker's API load balancer listens; every
// kubeconfig of the node points here (k3s uses the same port).
const balancerAddress = "127.0.0.1:6444"

// startBalancer attaches to the client-side load balancer in front of the
// API servers, starting its process if none runs (or one of another
// program, which the new one takes over from). It runs apart from this
// process so that clients on the node keep reaching the API while the
// worker restarts. A new process starts from the servers known last time,
// else the token's, else the server an older data dir's kubeconfig names;
// the cluster's kubernetes endpoints take over once the node can read them.
func (w *Worker) startBalancer(ctx context.Context) (*loadbalancer.Process, error) {
	servers, err := w.knownServers()
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this program: %w", err)
	}
	lb := &loadbalancer.Process{
		Socket:     w.Layout.APIBalancerSocket(),
		PIDFile:    w.Layout.APIBalancerPIDFile(),
		Listen:     balancerAddress,
		Initial:    servers,
		LogFile:    w.Layout.APIBalancerLog(),
		Executable: self,
		Version:    version.Version,
		Command: func(p *loadbalancer.Process) []string {
			return []string{self, loadbalancer.StandaloneCommand, "--socket", p.Socket, "--pid-file", p.PIDFile,
				"--listen", p.Listen, "--servers", strings.Join(p.Initial, ",")}
		},
	}
	if err := os.MkdirAll(w.Layout.Run, 0o700); err != nil {
		return nil, err
	}
	if err := lb.Attach(ctx); err != nil {
		return nil, fmt.Errorf("API load balancer: %w", err)
	}
	return lb, nil
}

func (w *Worker) knownServers() ([]string, error) {
	var saved []string
	if raw, err := os.ReadFile(w.Layout.APIServersFile()); err == nil && json.Unmarshal(raw, &saved) == nil && len(saved) > 0 {
		return saved, nil
	}
	var urls []string
	if w.Token != "" {
		token, err := join.Parse(w.Token)
		if err != nil {
			return nil, err
		}
		urls = token.Servers
	} else if config, err := clientcmd.LoadFromFile(w.Layout.AgentPKIDir() + "/kubelet.conf"); err == nil {
		for _, cluster := range config.Clusters {
			urls = append(urls, cluster.Server)
		}
	}
	var servers []string
	for _, raw := range urls {
		if u, err := url.Parse(raw); err == nil && u.Host != "" && u.Host != balancerAddress {
			servers = append(servers, u.Host)
		}
	}
	if len(servers) == 0 {
		return nil, errors.New("this worker knows no server: pass a join token (create one on a server with `monokube token create --role=worker`)")
	}
	return servers, nil
}

// followServers keeps the balancer's list equal to the cluster's API
// servers, and saves it for the next start (the token's list may be stale
// by then, or every server in it gone).
func (w *Worker) followServers(ctx context.Context, lb *loadbalancer.Process, kubeconfig string) error {
	client, err := kubeclient.New(kubeconfig)
	if err != nil {
		return err
	}
	go loadbalancer.WatchServers(ctx, client, lb)
	go func() {
		var saved []string
		for {
			if current := lb.Servers(); !slices.Equal(current, saved) {
				if raw, err := json.Marshal(current); err == nil && os.WriteFile(w.Layout.APIServersFile(), raw, 0o600) == nil {
					saved = current
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(10 * time.Second):
			}
		}
	}()
	return nil
}
