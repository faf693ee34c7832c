package node

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

type countingHandler struct{ adds, updates, deletes int }

func (c *countingHandler) OnAdd(any, bool)   { c.adds++ }
func (c *countingHandler) OnUpdate(any, any) { c.updates++ }
func (c *countingHandler) OnDelete(any)      { c.deletes++ }
func (c *countingHandler) total() int        { return c.adds + c.updates + c.deletes }
func (c *countingHandler) all(h cache.ResourceEventHandler) {
	h.OnAdd(nil, false)
	h.OnUpdate(nil, nil)
	h.OnDelete(nil)
}

func TestPodEventsReachThePolicyControllerOnlyWhilePoliciesExist(t *testing.T) {
	store := cache.NewStore(cache.MetaNamespaceKeyFunc)
	counted := &countingHandler{}
	gated := whilePoliciesExist{handler: counted, policies: store}
	counted.all(gated)
	if counted.total() != 0 {
		t.Fatalf("with no NetworkPolicy, %d pod events reached the controller", counted.total())
	}
	policy := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: "deny", Namespace: "default"}}
	if err := store.Add(policy); err != nil {
		t.Fatal(err)
	}
	counted.all(gated)
	if counted.adds != 1 || counted.updates != 1 || counted.deletes != 1 {
		t.Fatalf("with a NetworkPolicy, events passed: %+v", *counted)
	}
	if err := store.Delete(policy); err != nil {
		t.Fatal(err)
	}
	counted.all(gated)
	if counted.total() != 3 {
		t.Fatalf("after the last NetworkPolicy went, events still passed: %+v", *counted)
	}
}
