package node

import (
	"context"
	"errors"

	"github.com/monokube/monokube/internal/component"
)

// Flannel runs flannel's subnet manager and backend in this process.
type Flannel struct {
	Paths       Paths
	Kubeconfig  string
	NodeName    string
	NodeIP      string
	ClusterCIDR string
	Backend     string
	Filter      string

	mtu int
}

var _ component.Component = (*Flannel)(nil)

func (f *Flannel) Name() string                { return "flannel" }
func (f *Flannel) Init(context.Context) error  { return nil }
func (f *Flannel) Start(context.Context) error { return errors.New("flannel: not yet") }
func (f *Flannel) Ready(context.Context) error { return nil }
func (f *Flannel) Stop() error                 { return nil }
func (f *Flannel) MTU() int                    { return f.mtu }
