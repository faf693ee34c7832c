package manifests

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"k8s.io/klog/v2"
)

const (
	// StackLabel names the stack on every object it created; pruning
	// lists by it.
	StackLabel = "monokube.io/stack"
	// fieldManager owns the fields the manifests set (server-side apply).
	fieldManager = "monokube-manifests"
)

// applier applies stacks' objects and deletes what a stack no longer has.
type applier struct {
	client dynamic.Interface
	mapper *restmapper.DeferredDiscoveryRESTMapper
}

// objectKey identifies an applied object within a stack.
type objectKey struct {
	gvk             schema.GroupVersionKind
	namespace, name string
}

// applyOrder puts what other objects need first: namespaces and CRDs
// before the objects that live in or use them.
func applyOrder(obj Object) int {
	switch obj.GetKind() {
	case "Namespace":
		return 0
	case "CustomResourceDefinition":
		return 1
	case "ServiceAccount", "ClusterRole", "Role", "ConfigMap", "Secret", "StorageClass", "PriorityClass":
		return 2
	}
	return 3
}

// apply applies every object of a stack, labelled with its name, and returns
// the types it used (for pruning later) or the first error, which names the
// object's file and line.
func (a *applier) apply(ctx context.Context, stack string, objects []Object) ([]schema.GroupVersionKind, map[objectKey]bool, error) {
	slices.SortStableFunc(objects, func(x, y Object) int { return applyOrder(x) - applyOrder(y) })
	var kinds []schema.GroupVersionKind
	applied := map[objectKey]bool{}
	for _, obj := range objects {
		labels := obj.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[StackLabel] = stack
		obj.SetLabels(labels)
		key, err := a.applyOne(ctx, obj)
		if err != nil {
			return kinds, applied, err
		}
		applied[key] = true
		if !slices.Contains(kinds, key.gvk) {
			kinds = append(kinds, key.gvk)
		}
	}
	return kinds, applied, nil
}

// applyOne applies one object; a kind the API does not know yet (a CRD of
// the same stack still being established) is retried for a while.
func (a *applier) applyOne(ctx context.Context, obj Object) (objectKey, error) {
	gvk := obj.GroupVersionKind()
	var mapping *meta.RESTMapping
	var err error
	for attempt := 0; ; attempt++ {
		mapping, err = a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err == nil || !meta.IsNoMatchError(err) || attempt == 20 {
			break
		}
		a.mapper.Reset()
		select {
		case <-ctx.Done():
			return objectKey{}, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	if err != nil {
		return objectKey{}, fmt.Errorf("%s: %s %s: %w", obj.Source, gvk.Kind, obj.GetName(), err)
	}
	key := objectKey{gvk: gvk, name: obj.GetName()}
	resource := a.client.Resource(mapping.Resource)
	var target dynamic.ResourceInterface = resource
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		if obj.GetNamespace() == "" {
			obj.SetNamespace(metav1.NamespaceDefault)
		}
		key.namespace = obj.GetNamespace()
		target = resource.Namespace(key.namespace)
	} else {
		obj.SetNamespace("")
	}
	if _, err := target.Apply(ctx, obj.GetName(), obj.Unstructured, metav1.ApplyOptions{FieldManager: fieldManager, Force: true}); err != nil {
		return objectKey{}, fmt.Errorf("%s: %s %s: %w", obj.Source, gvk.Kind, describe(key), err)
	}
	return key, nil
}

// prune deletes the objects labelled with the stack, of the given types,
// that are not in keep. A type the API no longer serves has nothing left.
func (a *applier) prune(ctx context.Context, stack string, kinds []schema.GroupVersionKind, keep map[objectKey]bool) error {
	selector := metav1.ListOptions{LabelSelector: StackLabel + "=" + stack}
	var errs []error
	for _, gvk := range kinds {
		mapping, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if meta.IsNoMatchError(err) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		list, err := a.client.Resource(mapping.Resource).List(ctx, selector)
		if err != nil {
			errs = append(errs, fmt.Errorf("list %s: %w", mapping.Resource.Resource, err))
			continue
		}
		for _, item := range list.Items {
			key := objectKey{gvk: gvk, namespace: item.GetNamespace(), name: item.GetName()}
			if keep[key] || item.GetDeletionTimestamp() != nil {
				continue
			}
			target := a.client.Resource(mapping.Resource).Namespace(item.GetNamespace())
			propagation := metav1.DeletePropagationBackground
			err := target.Delete(ctx, item.GetName(), metav1.DeleteOptions{PropagationPolicy: &propagation})
			if err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("delete %s %s: %w", gvk.Kind, describe(key), err))
				continue
			}
			klog.InfoS("Pruned object no longer in its stack", "stack", stack, "kind", gvk.Kind, "object", describe(key))
		}
	}
	return errors.Join(errs...)
}

func describe(key objectKey) string {
	if key.namespace == "" {
		return key.name
	}
	return key.namespace + "/" + key.name
}

// kindNames and parseKinds keep a stack's types in its record.
func kindNames(kinds []schema.GroupVersionKind) string {
	var names []string
	for _, gvk := range kinds {
		names = append(names, gvk.GroupVersion().String()+"/"+gvk.Kind)
	}
	slices.Sort(names)
	return strings.Join(slices.Compact(names), "\n")
}

func parseKinds(text string) []schema.GroupVersionKind {
	var kinds []schema.GroupVersionKind
	for _, line := range strings.Fields(text) {
		i := strings.LastIndex(line, "/")
		if i < 0 {
			continue
		}
		gv, err := schema.ParseGroupVersion(line[:i])
		if err != nil {
			continue
		}
		kinds = append(kinds, gv.WithKind(line[i+1:]))
	}
	return kinds
}
