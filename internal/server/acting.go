package server

import (
	"github.com/monokube/monokube/internal/addons"
	"github.com/monokube/monokube/internal/addons/helm"
	"github.com/monokube/monokube/internal/addons/localstorage"
	"github.com/monokube/monokube/internal/addons/servicelb"
	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/node"
	"github.com/monokube/monokube/internal/pki"
)

// actingControllers are the add-on controllers that act on the cluster as
// a whole (provisioning volumes, installing charts, serving
// LoadBalancers). With several servers possible (leaderElect) they run on
// the one holding the monokube-controllers lease.
func (s *Server) actingControllers(files pki.Files, leaderElect bool) ([]component.Component, error) {
	spec := s.Config.Spec
	var acting []component.Component
	if spec.Addons.LocalStorage.On() {
		// Built here, before anything runs concurrently (see NewProvisioner).
		provisioner, err := localstorage.NewProvisioner(files.SelfKubeconfig(), s.storagePath(), addons.VolumeHelperImage)
		if err != nil {
			return nil, err
		}
		acting = append(acting, provisioner)
	}
	if spec.Addons.HelmController.On() {
		acting = append(acting, &helm.Controller{Kubeconfig: files.SelfKubeconfig(), StaticDir: s.Layout.StaticChartsDir()})
	}
	if spec.Addons.ServiceLB.On() {
		acting = append(acting, &servicelb.Controller{Kubeconfig: files.SelfKubeconfig()})
	}
	if !leaderElect || len(acting) == 0 {
		return acting, nil
	}
	identity, err := node.NewIdentity(spec.Worker)
	if err != nil {
		return nil, err
	}
	return []component.Component{&Elected{Kubeconfig: files.SelfKubeconfig(), Lease: "monokube-controllers", Identity: identity.Name, Components: acting}}, nil
}
