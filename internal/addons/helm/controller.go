package helm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/kubeclient"
)

// Controller is the component that reconciles HelmCharts.
type Controller struct {
	Kubeconfig string // a privileged identity on the local API server
	// StaticDir holds charts users ship with the server.
	StaticDir string

	component.Task
	client   dynamic.Interface
	recorder record.EventRecorder
	stopRec  func()
	releases releases
	charts   cache.GenericLister
	configs  cache.GenericLister
	queue    workqueue.TypedRateLimitingInterface[string]
}

var _ component.Component = (*Controller)(nil)

func (c *Controller) Name() string { return "helm-controller" }

func (c *Controller) Init(context.Context) error { return nil }

func (c *Controller) Start(ctx context.Context) error {
	restConfig, err := kubeclient.Config(c.Kubeconfig)
	if err != nil {
		return err
	}
	if c.client, err = dynamic.NewForConfig(restConfig); err != nil {
		return fmt.Errorf("helm controller client: %w", err)
	}
	typed, err := kubeclient.New(c.Kubeconfig)
	if err != nil {
		return err
	}
	c.recorder, c.stopRec = kubeclient.EventRecorder(typed, "helm-controller")
	c.releases = releases{kubeconfig: c.Kubeconfig}
	c.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](2*time.Second, 5*time.Minute),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "helmcharts"})
	c.Go(ctx, c.run)
	return nil
}

func (c *Controller) Ready(context.Context) error { return nil }

func (c *Controller) Stop() error {
	if c.queue != nil {
		c.queue.ShutDown()
	}
	err := c.Task.Stop(10 * time.Second)
	if c.stopRec != nil {
		c.stopRec()
	}
	return err
}

func (c *Controller) run(ctx context.Context) error {
	// The CRDs come from the add-on's manifest; the informers retry until
	// they exist.
	factory := dynamicinformer.NewDynamicSharedInformerFactory(c.client, 10*time.Minute)
	charts, configs := factory.ForResource(chartsResource), factory.ForResource(configsResource)
	c.charts, c.configs = charts.Lister(), configs.Lister()
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			c.queue.Add(key)
		}
	}
	// Our own status writes do not change the generation and must not
	// bring the object back at once (a failing chart would spin).
	changed := func(old, obj any) {
		before, ok1 := old.(*unstructured.Unstructured)
		after, ok2 := obj.(*unstructured.Unstructured)
		if ok1 && ok2 && before.GetGeneration() == after.GetGeneration() && after.GetDeletionTimestamp() == nil {
			return
		}
		enqueue(obj)
	}
	handler := cache.ResourceEventHandlerFuncs{AddFunc: enqueue, UpdateFunc: changed, DeleteFunc: enqueue}
	// A HelmChartConfig is named after the HelmChart it configures.
	if _, err := charts.Informer().AddEventHandler(handler); err != nil {
		return err
	}
	if _, err := configs.Informer().AddEventHandler(handler); err != nil {
		return err
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	go func() {
		<-ctx.Done()
		c.queue.ShutDown()
	}()
	if !cache.WaitForCacheSync(ctx.Done(), charts.Informer().HasSynced, configs.Informer().HasSynced) {
		return nil
	}
	klog.InfoS("Reconciling HelmCharts", "staticCharts", c.StaticDir)
	for {
		key, shutdown := c.queue.Get()
		if shutdown {
			return nil
		}
		err := c.reconcile(ctx, key)
		if err != nil && ctx.Err() == nil {
			klog.ErrorS(err, "HelmChart not reconciled; retrying", "helmchart", key)
			c.queue.AddRateLimited(key)
		} else {
			c.queue.Forget(key)
		}
		c.queue.Done(key)
	}
}

func (c *Controller) reconcile(ctx context.Context, key string) error {
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	obj, err := c.charts.ByNamespace(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return nil // gone after its finalizer ran
	}
	if err != nil {
		return err
	}
	hc := obj.(*unstructured.Unstructured).DeepCopy()
	var spec chartSpec
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(mapOf(hc.Object["spec"]), &spec); err != nil {
		c.fail(ctx, hc, "InvalidSpec", err)
		return nil
	}
	target := spec.TargetNamespace
	if target == "" {
		target = namespace
	}
	if hc.GetDeletionTimestamp() != nil {
		if !slices.Contains(hc.GetFinalizers(), finalizer) {
			return nil
		}
		if err := c.releases.uninstall(name, target); err != nil {
			c.recorder.Event(hc, corev1.EventTypeWarning, "UninstallFailed", err.Error())
			return err
		}
		klog.InfoS("Uninstalled Helm release", "helmchart", key, "release", name, "namespace", target)
		hc.SetFinalizers(slices.DeleteFunc(hc.GetFinalizers(), func(f string) bool { return f == finalizer }))
		_, err := c.client.Resource(chartsResource).Namespace(namespace).Update(ctx, hc, metav1.UpdateOptions{})
		return ignoreNotFound(err)
	}
	if !slices.Contains(hc.GetFinalizers(), finalizer) {
		hc.SetFinalizers(append(hc.GetFinalizers(), finalizer))
		updated, err := c.client.Resource(chartsResource).Namespace(namespace).Update(ctx, hc, metav1.UpdateOptions{})
		if err != nil {
			return ignoreNotFound(err)
		}
		hc = updated
	}

	var config *configSpec
	if cfgObj, err := c.configs.ByNamespace(namespace).Get(name); err == nil {
		config = &configSpec{}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(mapOf(cfgObj.(*unstructured.Unstructured).Object["spec"]), config); err != nil {
			c.fail(ctx, hc, "InvalidConfig", err)
			return nil
		}
	}
	ch, raw, err := loadChart(spec, c.StaticDir)
	if err != nil {
		c.fail(ctx, hc, "ChartNotFound", err)
		return err
	}
	vals, err := values(spec, config)
	if err != nil {
		c.fail(ctx, hc, "InvalidValues", err)
		return nil
	}
	hash := fingerprint(raw, vals, target)
	status := mapOf(hc.Object["status"])
	if status["appliedHash"] == hash {
		return nil
	}
	timeout := 5 * time.Minute
	if spec.Timeout != "" {
		if parsed, err := time.ParseDuration(spec.Timeout); err == nil {
			timeout = parsed
		}
	}
	began := time.Now()
	// The release namespace is created when asked, and always when it is
	// the HelmChart's own (it exists) — as helm install --create-namespace.
	action, revision, err := c.releases.apply(ctx, name, target, spec.CreateNamespace || spec.TargetNamespace != "", timeout, ch, vals)
	if err != nil {
		c.fail(ctx, hc, "InstallFailed", err)
		return err
	}
	message := fmt.Sprintf("%s chart %s %s as release %s/%s revision %d", action, ch.Name(), ch.Metadata.Version, target, name, revision)
	klog.InfoS("Helm release applied", "helmchart", key, "action", action, "chart", ch.Name(), "version", ch.Metadata.Version, "revision", revision, "took", time.Since(began).Round(time.Millisecond))
	c.recorder.Event(hc, corev1.EventTypeNormal, "Applied", message)
	return c.setStatus(ctx, hc, map[string]any{
		"appliedHash": hash, "releaseName": name, "releaseNamespace": target, "revision": int64(revision),
		"conditions": []any{condition("Failed", "False", "Applied", message)},
	})
}

// fail records why a HelmChart is not applied, as a condition and an Event.
func (c *Controller) fail(ctx context.Context, hc *unstructured.Unstructured, reason string, err error) {
	c.recorder.Event(hc, corev1.EventTypeWarning, reason, err.Error())
	status := mapOf(hc.Object["status"])
	if conditions, ok := status["conditions"].([]any); ok && len(conditions) == 1 && mapOf(conditions[0])["message"] == err.Error() {
		return
	}
	status["conditions"] = []any{condition("Failed", "True", reason, err.Error())}
	if serr := c.setStatus(ctx, hc, status); serr != nil {
		klog.ErrorS(serr, "Cannot record HelmChart failure", "helmchart", hc.GetNamespace()+"/"+hc.GetName())
	}
}

func (c *Controller) setStatus(ctx context.Context, hc *unstructured.Unstructured, status map[string]any) error {
	hc.Object["status"] = status
	_, err := c.client.Resource(chartsResource).Namespace(hc.GetNamespace()).UpdateStatus(ctx, hc, metav1.UpdateOptions{})
	return ignoreNotFound(err)
}

func condition(kind, status, reason, message string) map[string]any {
	return map[string]any{
		"type": kind, "status": status, "reason": reason, "message": message,
		"lastTransitionTime": time.Now().UTC().Format(time.RFC3339),
	}
}

// fingerprint identifies what a release was applied from, so an unchanged
// HelmChart is not upgraded again.
func fingerprint(chartBytes []byte, vals map[string]any, namespace string) string {
	encoded, _ := json.Marshal(vals)
	sum := sha256.New()
	sum.Write(chartBytes)
	sum.Write([]byte{0})
	sum.Write(encoded)
	sum.Write([]byte{0})
	sum.Write([]byte(namespace))
	return hex.EncodeToString(sum.Sum(nil))[:32]
}

func mapOf(v any) map[string]any {
	if m, ok := v.(map[string]any); ok {
		return m
	}
	return map[string]any{}
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
