// Package scale measures how many nodes and pods one monokube server
// holds: simulated nodes (kwok, in this process) that keep their Leases
// and status up as kubelets do, a load driver after clusterloader2's
// "load" test, and upstream's scalability SLOs computed the way upstream
// defines them.
package scale

import (
	"context"
	"fmt"
	"io"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/utils/clock"
	nodefast "sigs.k8s.io/kwok/kustomize/stage/node/fast"
	nodelease "sigs.k8s.io/kwok/kustomize/stage/node/heartbeat-with-lease"
	podfast "sigs.k8s.io/kwok/kustomize/stage/pod/fast"
	"sigs.k8s.io/kwok/pkg/apis/internalversion"
	"sigs.k8s.io/kwok/pkg/apis/v1alpha1"
	"sigs.k8s.io/kwok/pkg/kwok/controllers"
	kwoklog "sigs.k8s.io/kwok/pkg/log"
	"sigs.k8s.io/yaml"
)

// fakeAnnotation marks the nodes kwok plays (its default selector).
const fakeAnnotation = "kwok.x-k8s.io/node"

// ClusterPodCIDR holds a /24 for each of 4096 nodes (the default
// 10.42.0.0/16 holds 256).
const ClusterPodCIDR = "10.64.0.0/12"

// NodeLabel is on every simulated node, for selectors and cleanup.
const NodeLabel = "scale.monokube.io/simulated"

// podWorkers is how many pods kwok moves through their stages at once:
// with 8, a rolling update of 1500 pods queued in kwok for 20 s and more
// (pod startup p99 24 s at 100 nodes) while the server had CPU to spare
// for it.
const podWorkers = 64

// nodeLeaseSeconds is a kubelet's default node lease; kwok renews it every
// quarter of that, as a kubelet does.
const nodeLeaseSeconds = 40

// StartNodes creates count simulated Nodes and runs kwok for them until
// ctx ends. Each node's pods reach Running as soon as they are bound (no
// image pull, no containers): what is measured is the control plane.
func StartNodes(ctx context.Context, config *rest.Config, count int) error {
	config = rest.CopyConfig(config)
	config.QPS, config.Burst = 2000, 4000
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return err
	}
	if err := createNodes(ctx, client, count); err != nil {
		return err
	}
	dynamicClient, err := dynamic.NewForConfig(config)
	if err != nil {
		return err
	}
	stages, err := defaultStages()
	if err != nil {
		return err
	}
	id, err := controllers.Identity()
	if err != nil {
		return err
	}
	// kwok logs each patch at Info: a thousand nodes would drown the output.
	ctx = kwoklog.NewContext(ctx, kwoklog.NewLogger(io.Discard, kwoklog.LevelError))
	controller, err := controllers.NewController(controllers.Config{
		Clock: clock.RealClock{}, TypedClient: client, DynamicClient: dynamicClient,
		RESTMapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(client.Discovery())),
		RESTClient: client.Discovery().RESTClient(), ManageNodesWithAnnotationSelector: fakeAnnotation + "=fake",
		LocalStages: stages, CIDR: "10.200.0.0/16", NodeLeaseDurationSeconds: nodeLeaseSeconds, NodeLeaseParallelism: 8,
		PodPlayStageParallelism: podWorkers, NodePlayStageParallelism: 8, PodsOnNodeSyncParallelism: 4, ID: id,
	})
	if err != nil {
		return fmt.Errorf("kwok: %w", err)
	}
	return controller.Start(ctx)
}

// createNodes registers the nodes as a kubelet would: with capacity and
// the labels a scheduler and workloads look at; the controller-manager
// gives each a pod CIDR (the cluster's pod range must hold a /24 per
// node: ClusterPodCIDR).
func createNodes(ctx context.Context, client kubernetes.Interface, count int) error {
	work := make(chan int)
	errs := make(chan error, count)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				errs <- createNode(ctx, client, i)
			}
		}()
	}
	for i := range count {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func createNode(ctx context.Context, client kubernetes.Interface, i int) error {
	name := fmt.Sprintf("sim-%04d", i)
	capacity := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("8"), corev1.ResourceMemory: resource.MustParse("32Gi"),
		corev1.ResourcePods: resource.MustParse("110"),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{fakeAnnotation: "fake", "node.alpha.kubernetes.io/ttl": "0"},
			Labels: map[string]string{NodeLabel: "true", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
				"kubernetes.io/arch": "amd64", "type": "kwok"},
		},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity,
			NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "kwok", OperatingSystem: "linux", Architecture: "amd64"}},
	}
	if _, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create node %s: %w", name, err)
	}
	return nil
}

// defaultStages are kwok's own: nodes get Ready and keep a Lease, pods
// get Running at once and go when deleted.
func defaultStages() (map[internalversion.StageResourceRef][]*internalversion.Stage, error) {
	stages := map[internalversion.StageResourceRef][]*internalversion.Stage{}
	for _, raw := range []string{nodefast.DefaultNodeInit, nodelease.DefaultNodeHeartbeatWithLease,
		podfast.DefaultPodReady, podfast.DefaultPodComplete, podfast.DefaultPodDelete} {
		var stage v1alpha1.Stage
		if err := yaml.Unmarshal([]byte(raw), &stage); err != nil {
			return nil, fmt.Errorf("kwok stage: %w", err)
		}
		internal, err := internalversion.ConvertToInternalStage(&stage)
		if err != nil {
			return nil, fmt.Errorf("kwok stage %s: %w", stage.Name, err)
		}
		stages[internal.Spec.ResourceRef] = append(stages[internal.Spec.ResourceRef], internal)
	}
	return stages, nil
}
