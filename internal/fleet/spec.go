package fleet

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strings"

	"github.com/monokube/monokube/internal/config"
)

// Kind is a cluster file's kind; it shares the ClusterConfig's apiVersion.
const Kind = "Cluster"

// Roles a host can have.
const (
	RoleServer       = "server"
	RoleWorker       = "worker"
	RoleServerWorker = "server+worker"
)

// Providers: hosts reached over SSH, or nodes on this machine.
const (
	ProviderSSH   = "ssh"
	ProviderLocal = "local"
)

// File is a cluster file: the hosts and the ClusterConfig they share.
type File struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   config.ObjectMeta `json:"metadata"`
	Spec       Spec              `json:"spec"`
}

// Spec is what a cluster file says.
type Spec struct {
	// Provider is ssh (the default) or local.
	Provider string `json:"provider"`
	Hosts    []Host `json:"hosts"`
	// Config is the ClusterConfig's spec every server gets (its name is the
	// cluster's).
	Config config.Spec `json:"config"`
	// Local configures the local provider.
	Local LocalSpec `json:"local"`
}

// Host is one machine of the cluster.
type Host struct {
	// Name is the Node's name; default: the address (ssh), hostN (local).
	Name string `json:"name"`
	// Address is where SSH reaches the host (ssh provider).
	Address string `json:"address"`
	SSH     SSH    `json:"ssh"`
	Role    string `json:"role"`
	// NodeIP is the address the node registers with, when not the one it
	// reaches the servers from.
	NodeIP string   `json:"nodeIP"`
	Labels []string `json:"labels"`
	Taints []string `json:"taints"`
	// Args are more flags for this host's `monokube server|worker`
	// (--cgroup-root, --private-registry, ...): the per-host overrides.
	Args []string `json:"args"`
	// Service says how to run monokube where the host has neither systemd
	// nor OpenRC: shell commands that start and stop it.
	Service *ServiceCommands `json:"service,omitempty"`
}

// SSH is how to reach a host.
type SSH struct {
	User    string `json:"user"`
	Port    int    `json:"port"`
	KeyFile string `json:"keyFile"`
	// Bastion is a jump host, reached first.
	Bastion *Bastion `json:"bastion,omitempty"`
}

// Bastion is a jump host.
type Bastion struct {
	Address string `json:"address"`
	User    string `json:"user"`
	Port    int    `json:"port"`
	KeyFile string `json:"keyFile"`
}

// ServiceCommands run monokube on a host without an init system we know.
// Each runs with MONOKUBE_ROLE (server or worker) and MONOKUBE_ARGS (the
// command line) in its environment.
type ServiceCommands struct {
	Start string `json:"start"`
	Stop  string `json:"stop"`
}

// LocalSpec shapes a local cluster's machine-level settings.
type LocalSpec struct {
	// CgroupParent holds every node's cgroups (default /monokube-local).
	CgroupParent string `json:"cgroupParent"`
	// Subnet is the nodes' /24 (default: a free one in 10.213.0.0/16).
	Subnet string `json:"subnet"`
}

// IsServer and IsNode read a role.
func (h Host) IsServer() bool { return h.Role == RoleServer || h.Role == RoleServerWorker }
func (h Host) IsNode() bool   { return h.Role == RoleWorker || h.Role == RoleServerWorker }

// LoadFile reads and checks a cluster file; every bad field is reported
// with its line.
func LoadFile(path string) (*File, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read cluster file: %w", err)
	}
	f := &File{Spec: Spec{Config: config.Default().Spec}}
	lines, problems, err := config.Decode(raw, f)
	if err != nil {
		return nil, fmt.Errorf("cluster file %s: %w", path, err)
	}
	if lines == nil {
		return nil, &config.InvalidError{File: path, Fields: problems}
	}
	f.defaults()
	problems = append(problems, f.problems(lines)...)
	if len(problems) > 0 {
		return nil, &config.InvalidError{File: path, Fields: problems}
	}
	return f, nil
}

func (f *File) defaults() {
	if f.Spec.Provider == "" {
		f.Spec.Provider = ProviderSSH
	}
	for i := range f.Spec.Hosts {
		h := &f.Spec.Hosts[i]
		if h.Name == "" {
			if f.Spec.Provider == ProviderLocal {
				h.Name = fmt.Sprintf("%s-%d", f.Metadata.Name, i+1)
			} else {
				h.Name = h.Address
			}
		}
		if h.SSH.User == "" {
			h.SSH.User = "root"
		}
		if h.SSH.Port == 0 {
			h.SSH.Port = 22
		}
		if b := h.SSH.Bastion; b != nil {
			if b.User == "" {
				b.User = h.SSH.User
			}
			if b.Port == 0 {
				b.Port = 22
			}
		}
	}
	if f.Spec.Local.CgroupParent == "" {
		f.Spec.Local.CgroupParent = "/monokube-local"
	}
}

// problems checks what Decode cannot: values, and the ClusterConfig inside
// (its lines found under spec.config).
func (f *File) problems(lines config.Lines) []config.FieldError {
	var out []config.FieldError
	add := func(path, format string, args ...any) {
		out = append(out, config.FieldError{Path: path, Line: lines[path], Message: fmt.Sprintf(format, args...)})
	}
	if f.APIVersion != config.APIVersion {
		add("apiVersion", "must be %q, got %q", config.APIVersion, f.APIVersion)
	}
	if f.Kind != Kind {
		add("kind", "must be %q, got %q", Kind, f.Kind)
	}
	if f.Metadata.Name == "" {
		add("metadata.name", "name the cluster (it names the kubeconfig context too)")
	}
	if !slices.Contains([]string{ProviderSSH, ProviderLocal}, f.Spec.Provider) {
		add("spec.provider", "must be ssh or local, got %q", f.Spec.Provider)
	}
	servers, names := 0, map[string]int{}
	for i, h := range f.Spec.Hosts {
		path := fmt.Sprintf("spec.hosts[%d]", i)
		switch h.Role {
		case RoleServer, RoleServerWorker:
			servers++
		case RoleWorker:
		default:
			add(path+".role", "must be server, worker or server+worker, got %q", h.Role)
		}
		if f.Spec.Provider == ProviderSSH && h.Address == "" {
			add(path+".address", "give the address SSH reaches the host at")
		}
		if h.NodeIP != "" && net.ParseIP(h.NodeIP) == nil {
			add(path+".nodeIP", "%q is not an address", h.NodeIP)
		}
		if first, ok := names[h.Name]; ok {
			add(path+".name", "%q is host %d's name too; names must differ", h.Name, first)
		}
		names[h.Name] = i
		spec := config.WorkerSpec{NodeName: h.Name, Labels: h.Labels, Taints: h.Taints}
		for _, p := range spec.Problems() {
			field := p.Field
			if field == "nodeName" {
				field = "name"
			}
			if p.Index >= 0 {
				field = fmt.Sprintf("%s[%d]", field, p.Index)
			}
			add(path+"."+field, "%s", p.Message)
		}
		if s := h.Service; s != nil && (s.Start == "" || s.Stop == "") {
			add(path+".service", "give both start and stop commands")
		}
	}
	if servers == 0 {
		add("spec.hosts", "at least one host must be a server")
	}
	if servers > 1 && f.Spec.Config.Storage.Type == config.StorageSQLite {
		add("spec.config.storage.type", "%d servers need etcd, postgres or mysql (SQLite is one server's)", servers)
	}
	if servers > 1 && f.Spec.Config.API.Address != "" {
		add("spec.config.api.address", "leave it empty: every server listens on its own machine and advertises its own address")
	}
	cfg := f.ClusterConfig()
	configLines := config.Lines{}
	for path, line := range lines {
		if rest, ok := strings.CutPrefix(path, "spec.config."); ok {
			configLines["spec."+rest] = line
		}
	}
	if invalid := config.Validate(cfg, configLines); invalid != nil {
		for _, e := range invalid.Fields {
			e.Path = "spec.config." + strings.TrimPrefix(e.Path, "spec.")
			out = append(out, e)
		}
	}
	return out
}

// ClusterConfig is the config every server of the cluster runs with.
func (f *File) ClusterConfig() *config.ClusterConfig {
	cfg := config.Default()
	cfg.Metadata.Name = f.Metadata.Name
	cfg.Spec = f.Spec.Config
	return cfg
}

// Servers and Workers split the hosts by role, in file order; a
// server+worker is a server.
func (f *File) Servers() []Host {
	return slices.DeleteFunc(slices.Clone(f.Spec.Hosts), func(h Host) bool { return !h.IsServer() })
}

func (f *File) Workers() []Host {
	return slices.DeleteFunc(slices.Clone(f.Spec.Hosts), func(h Host) bool { return h.IsServer() })
}
