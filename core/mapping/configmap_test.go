package mapping

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/internal/polltest"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	k8stesting "k8s.io/client-go/testing"
)

var cmGVR = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

// versionedClient returns a fake clientset whose ConfigMaps behave like the
// API server's: every write bumps resourceVersion and an update carrying a
// stale resourceVersion fails with Conflict. (The plain fake tracker does
// neither, so lost updates would go unnoticed.)
func versionedClient(objs ...runtime.Object) *fake.Clientset {
	cs, _ := versionedClientCounting(objs...)
	return cs
}

// versionedClientCounting is versionedClient that also counts the conflicts
// it returned.
func versionedClientCounting(objs ...runtime.Object) (*fake.Clientset, *atomic.Int32) {
	var conflicts atomic.Int32
	cs := fake.NewClientset(objs...)
	var mu sync.Mutex
	rv := 100
	tracker := cs.Tracker()
	cs.PrependReactor("create", "configmaps", func(a k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		obj := a.(k8stesting.CreateAction).GetObject().(*corev1.ConfigMap).DeepCopy()
		rv++
		obj.ResourceVersion = strconv.Itoa(rv)
		if err := tracker.Create(cmGVR, obj, a.GetNamespace()); err != nil {
			return true, nil, err
		}
		return true, obj, nil
	})
	cs.PrependReactor("update", "configmaps", func(a k8stesting.Action) (bool, runtime.Object, error) {
		mu.Lock()
		defer mu.Unlock()
		obj := a.(k8stesting.UpdateAction).GetObject().(*corev1.ConfigMap).DeepCopy()
		cur, err := tracker.Get(cmGVR, a.GetNamespace(), obj.Name)
		if err != nil {
			return true, nil, err
		}
		if cur.(*corev1.ConfigMap).ResourceVersion != obj.ResourceVersion {
			conflicts.Add(1)
			return true, nil, apierrors.NewConflict(cmGVR.GroupResource(), obj.Name, errors.New("the object has been modified"))
		}
		rv++
		obj.ResourceVersion = strconv.Itoa(rv)
		if err := tracker.Update(cmGVR, obj, a.GetNamespace()); err != nil {
			return true, nil, err
		}
		return true, obj, nil
	})
	return cs, &conflicts
}

func TestConfigMapStore(t *testing.T) {
	testStore(t, func(*testing.T) Store {
		return NewConfigMapStore(versionedClient(), "", "", nil)
	})
}

func TestConfigMapStoreReadsLegacyValues(t *testing.T) {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: DefaultConfigMapName, Namespace: DefaultConfigMapNamespace, ResourceVersion: "42"},
		Data: map[string]string{
			"irsa-iamrole-list-bucket": `{"iam_role_arn": "` + assetARN + `", "proxy_iam_role_arn": "` + proxyARN + `", "update_iam_role_trust_policy": "true"}`,
			"irsa-iamrole-multi":       `[{"iam_role_arn": "` + asset2 + `", "proxy_iam_role_arn": "` + proxy2 + `", "update_iam_role_trust_policy": false}]`,
			"broken":                   `{"iam_role_arn": 1}`,
		},
	}
	cs := versionedClient(cm)
	s := NewConfigMapStore(cs, "", "", nil)
	snap := mustSnap(t, s)
	want := map[string]model.Mapping{
		"irsa-iamrole-list-bucket": {Org: "irsa-iamrole-list-bucket", Pairs: []model.RolePair{{IAMRoleARN: assetARN, ProxyIAMRoleARN: proxyARN, UpdateTrustPolicy: true}}},
		"irsa-iamrole-multi":       {Org: "irsa-iamrole-multi", Multi: true, Pairs: []model.RolePair{{IAMRoleARN: asset2, ProxyIAMRoleARN: proxy2, UpdateTrustPolicy: false}}},
	}
	if snap.Revision != "42" || !reflect.DeepEqual(snap.Mappings, want) {
		t.Fatalf("snapshot = %+v, want revision 42 and %+v", snap, want)
	}
	// A write keeps the entry it could not parse, and stores the legacy value.
	if err := s.Put(context.Background(), model.Mapping{Org: "new", Pairs: []model.RolePair{{IAMRoleARN: assetARN, ProxyIAMRoleARN: proxyARN, UpdateTrustPolicy: false}}}); err != nil {
		t.Fatal(err)
	}
	got, err := cs.CoreV1().ConfigMaps(DefaultConfigMapNamespace).Get(context.Background(), DefaultConfigMapName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Data["broken"] != `{"iam_role_arn": 1}` {
		t.Fatalf("unparsable entry not preserved: %q", got.Data["broken"])
	}
	wantNew := `{"iam_role_arn": "` + assetARN + `", "proxy_iam_role_arn": "` + proxyARN + `", "update_iam_role_trust_policy": false}`
	if got.Data["new"] != wantNew {
		t.Fatalf("stored value = %s, want %s", got.Data["new"], wantNew)
	}
	if snap2 := mustSnap(t, s); snap2.Revision == "42" || len(snap2.Mappings) != 3 {
		t.Fatalf("after put: %+v", snap2)
	}
}

func TestConfigMapStoreRetriesInjectedConflict(t *testing.T) {
	cs := versionedClient()
	var conflicts, updates atomic.Int32
	s := NewConfigMapStore(cs, "ns", "cm", nil)
	ctx := context.Background()
	if err := s.Put(ctx, model.Mapping{Org: "first", Pairs: []model.RolePair{{IAMRoleARN: assetARN, ProxyIAMRoleARN: proxyARN, UpdateTrustPolicy: true}}}); err != nil {
		t.Fatal(err)
	}
	// Fail the next update once with Conflict, as if another writer won.
	cs.PrependReactor("update", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) {
		updates.Add(1)
		if conflicts.Add(1) == 1 {
			return true, nil, apierrors.NewConflict(cmGVR.GroupResource(), "cm", errors.New("injected"))
		}
		return false, nil, nil
	})
	if err := s.Put(ctx, model.Mapping{Org: "second", Pairs: []model.RolePair{{IAMRoleARN: asset2, ProxyIAMRoleARN: proxy2, UpdateTrustPolicy: false}}}); err != nil {
		t.Fatalf("Put after one conflict: %v", err)
	}
	if n := updates.Load(); n != 2 {
		t.Fatalf("%d update attempts, want 2 (one conflict, one retry)", n)
	}
	if got := mustSnap(t, s).Mappings; len(got) != 2 {
		t.Fatalf("mappings = %+v, want both orgs", got)
	}
}

func TestConfigMapStoreUnavailable(t *testing.T) {
	cs := versionedClient()
	cs.PrependReactor("*", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewServiceUnavailable("etcd is down")
	})
	s := NewConfigMapStore(cs, "", "", nil)
	ctx := context.Background()
	if _, err := s.Snapshot(ctx); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Snapshot = %v, want ErrUnavailable", err)
	}
	if err := s.Put(ctx, model.Mapping{Org: "a", Pairs: []model.RolePair{{IAMRoleARN: assetARN, ProxyIAMRoleARN: proxyARN, UpdateTrustPolicy: true}}}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Put = %v, want ErrUnavailable", err)
	}
	if err := s.Delete(ctx, "a"); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNotFound) {
		t.Errorf("Delete = %v, want ErrUnavailable", err)
	}
}

func TestConfigMapStoreConflictsExhausted(t *testing.T) {
	cs := versionedClient(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm", Namespace: "ns", ResourceVersion: "1"}})
	cs.PrependReactor("update", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewConflict(cmGVR.GroupResource(), "cm", errors.New("always"))
	})
	s := NewConfigMapStore(cs, "ns", "cm", nil)
	s.backoff.Duration, s.backoff.Cap = time.Millisecond, time.Millisecond
	err := s.Put(context.Background(), model.Mapping{Org: "a", Pairs: []model.RolePair{{IAMRoleARN: assetARN, ProxyIAMRoleARN: proxyARN, UpdateTrustPolicy: true}}})
	if !errors.Is(err, ErrUnavailable) || !apierrors.IsConflict(err) {
		t.Fatalf("Put = %v, want ErrUnavailable wrapping the conflict", err)
	}
}

// Two writers read the same resourceVersion before either writes (a barrier
// in the get reactor forces it): one update must conflict, be retried, and
// both orgs must survive.
func TestConfigMapStoreRacingPuts(t *testing.T) {
	cs, conflicts := versionedClientCounting(&corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "cm", Namespace: "ns", ResourceVersion: "1"},
	})
	// The fake runs reactors under one lock, so the barrier sits in a client
	// wrapper instead, after the real Get has returned.
	barrier := &getBarrier{}
	barrier.wg.Add(2)
	s := NewConfigMapStore(barrierClient{cs, barrier}, "ns", "cm", nil)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, org := range []string{"org-a", "org-b"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Put(ctx, model.Mapping{Org: org, Pairs: []model.RolePair{{IAMRoleARN: assetARN, ProxyIAMRoleARN: proxyARN, UpdateTrustPolicy: true}}})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if conflicts.Load() < 1 {
		t.Fatal("no conflict happened: the test did not race")
	}
	got := mustSnap(t, s).Mappings
	if _, ok := got["org-a"]; !ok {
		t.Fatalf("org-a lost: %v", got)
	}
	if _, ok := got["org-b"]; !ok {
		t.Fatalf("org-b lost: %v", got)
	}
}

// getBarrier holds the first two ConfigMap Gets until both have returned.
type getBarrier struct {
	wg   sync.WaitGroup
	gets atomic.Int32
}

type barrierClient struct {
	*fake.Clientset
	b *getBarrier
}

func (c barrierClient) CoreV1() typedcorev1.CoreV1Interface {
	return barrierCore{c.Clientset.CoreV1(), c.b}
}

type barrierCore struct {
	typedcorev1.CoreV1Interface
	b *getBarrier
}

func (c barrierCore) ConfigMaps(ns string) typedcorev1.ConfigMapInterface {
	return barrierCMs{c.CoreV1Interface.ConfigMaps(ns), c.b}
}

type barrierCMs struct {
	typedcorev1.ConfigMapInterface
	b *getBarrier
}

func (c barrierCMs) Get(ctx context.Context, name string, o metav1.GetOptions) (*corev1.ConfigMap, error) {
	cm, err := c.ConfigMapInterface.Get(ctx, name, o)
	if c.b.gets.Add(1) <= 2 {
		c.b.wg.Done()
		c.b.wg.Wait()
	}
	return cm, err
}

var _ kubernetes.Interface = barrierClient{}

// TestConfigMapStoreWatched: after Start, snapshots come from the watch (no
// GET per snapshot), the store's own writes are visible at once, and writes
// by others arrive through the watch.
func TestConfigMapStoreWatched(t *testing.T) {
	cs := versionedClient()
	s := NewConfigMapStore(cs, "domino-field", "", nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	snap, err := s.Snapshot(ctx)
	if err != nil || len(snap.Mappings) != 0 || snap.Revision != absentRevision {
		t.Fatalf("absent: %+v %v", snap, err)
	}
	m := model.Mapping{Org: "org-a", Pairs: []model.RolePair{{IAMRoleARN: "arn:aws:iam::524112250363:role/a", ProxyIAMRoleARN: "arn:aws:iam::946429944765:role/a", UpdateTrustPolicy: true}}}
	if err := s.Put(ctx, m); err != nil {
		t.Fatal(err)
	}
	gets := func() int {
		n := 0
		for _, a := range cs.Actions() {
			if a.GetVerb() == "get" && a.GetResource().Resource == "configmaps" {
				n++
			}
		}
		return n
	}
	before := gets()
	for range 5 {
		snap, err = s.Snapshot(ctx)
		if err != nil || len(snap.Mappings) != 1 {
			t.Fatalf("read-your-writes: %+v %v", snap, err)
		}
	}
	if n := gets() - before; n != 0 {
		t.Fatalf("%d GETs for 5 snapshots of a watched store", n)
	}
	// Someone else (another replica, kubectl) writes.
	cm, err := cs.CoreV1().ConfigMaps("domino-field").Get(ctx, DefaultConfigMapName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm = cm.DeepCopy()
	cm.Data["org-b"] = Value(m)
	if cm, err = cs.CoreV1().ConfigMaps("domino-field").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	polltest.UntilErr(t, "the external write", func() (bool, error) {
		if snap, err = s.Snapshot(ctx); err != nil || len(snap.Mappings) != 2 {
			return false, fmt.Errorf("snapshot %+v, %v", snap, err)
		}
		return true, nil
	})

	// Other ConfigMaps of the namespace are not mappings. This one holds a
	// mapping and a resourceVersion above any the mapping ConfigMap reaches
	// here: were it taken for the mapping ConfigMap, the store (which keeps
	// the newest version it saw) would keep it, not let the marker replace it.
	other := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "domino-field", ResourceVersion: "1000000"},
		Data:       map[string]string{"org-other": Value(m)},
	}
	if err := cs.Tracker().Create(cmGVR, other, "domino-field"); err != nil {
		t.Fatal(err)
	}
	// A marker change to the mapping ConfigMap after it: the watch delivers
	// events in order, so once the store has moved on from the revision it
	// served, it has handled the other ConfigMap's event too.
	seen := snap.Revision
	cm = cm.DeepCopy()
	cm.Annotations = map[string]string{"test/marker": "after-other"}
	marked, err := cs.CoreV1().ConfigMaps("domino-field").Update(ctx, cm, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	polltest.UntilErr(t, "the store to move on from revision "+seen, func() (bool, error) {
		snap, err = s.Snapshot(ctx)
		return err == nil && snap.Revision != seen, err
	})
	if _, leaked := snap.Mappings["org-other"]; leaked || snap.Revision != marked.ResourceVersion || len(snap.Mappings) != 2 {
		t.Fatalf("another ConfigMap leaked in: %+v (marker at revision %s)", snap, marked.ResourceVersion)
	}
}

// TestConfigMapStoreApplyIsOneUpdate: a batch of several puts and deletes
// is one Update of the ConfigMap.
func TestConfigMapStoreApplyIsOneUpdate(t *testing.T) {
	cs := versionedClient()
	s := NewConfigMapStore(cs, "ns", "cm", nil)
	ctx := context.Background()
	pair := []model.RolePair{{IAMRoleARN: assetARN, ProxyIAMRoleARN: proxyARN, UpdateTrustPolicy: true}}
	for _, org := range []string{"a", "b", "c"} {
		if err := s.Put(ctx, model.Mapping{Org: org, Pairs: pair}); err != nil {
			t.Fatal(err)
		}
	}
	rev := mustSnap(t, s).Revision
	cs.ClearActions()
	b := model.Batch{Delete: []string{"a", "b"}, IfRevision: rev}
	for i := range 20 {
		b.Put = append(b.Put, model.Mapping{Org: fmt.Sprintf("new-%02d", i), Pairs: pair})
	}
	if _, err := s.Apply(ctx, b); err != nil {
		t.Fatal(err)
	}
	var writes []string
	for _, a := range cs.Actions() {
		if a.GetVerb() != "get" {
			writes = append(writes, a.GetVerb())
		}
	}
	if !reflect.DeepEqual(writes, []string{"update"}) {
		t.Fatalf("writes = %v, want one update", writes)
	}
	if got := mustSnap(t, s).Mappings; len(got) != 21 {
		t.Fatalf("%d mappings, want 21", len(got))
	}
}

// TestConfigMapStoreApplyRacingWriter: another writer updates the ConfigMap
// between the batch's Get and its Update (a hook after the Get makes it
// happen every time). With IfRevision the batch is refused as stale, not
// retried, and writes nothing; without it, it is retried and both survive.
func TestConfigMapStoreApplyRacingWriter(t *testing.T) {
	ctx := context.Background()
	pair := []model.RolePair{{IAMRoleARN: assetARN, ProxyIAMRoleARN: proxyARN, UpdateTrustPolicy: true}}
	for _, conditional := range []bool{true, false} {
		t.Run(fmt.Sprintf("if-revision=%v", conditional), func(t *testing.T) {
			cs, conflicts := versionedClientCounting(&corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: "cm", Namespace: "ns", ResourceVersion: "1"},
				Data:       map[string]string{"old": Value(model.Mapping{Org: "old", Pairs: pair})},
			})
			other := NewConfigMapStore(cs, "ns", "cm", nil)
			var once sync.Once
			hook := func() {
				once.Do(func() {
					if err := other.Put(ctx, model.Mapping{Org: "other", Pairs: pair}); err != nil {
						t.Error(err)
					}
				})
			}
			s := NewConfigMapStore(hookClient{cs, hook}, "ns", "cm", nil)
			b := model.Batch{Put: []model.Mapping{{Org: "mine", Pairs: pair}}, Delete: []string{"old"}}
			if conditional {
				b.IfRevision = "1"
			}
			_, err := s.Apply(ctx, b)
			if conflicts.Load() != 1 {
				t.Fatalf("%d conflicts, want 1: the writers did not race", conflicts.Load())
			}
			got := mustSnap(t, other).Mappings
			if conditional {
				if k, code, _ := model.Classify(err); k != model.KindPrecondition || code != "revision_mismatch" {
					t.Fatalf("Apply = %v, want a stale revision", err)
				}
				if _, ok := got["mine"]; ok || got["old"].Org == "" || got["other"].Org == "" {
					t.Fatalf("a refused batch wrote, or the other write was lost: %v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := got["old"]; ok || got["mine"].Org == "" || got["other"].Org == "" {
				t.Fatalf("after the retried batch: %v", got)
			}
		})
	}
}

// hookClient calls hook after every ConfigMap Get.
type hookClient struct {
	*fake.Clientset
	hook func()
}

func (c hookClient) CoreV1() typedcorev1.CoreV1Interface {
	return hookCore{c.Clientset.CoreV1(), c.hook}
}

type hookCore struct {
	typedcorev1.CoreV1Interface
	hook func()
}

func (c hookCore) ConfigMaps(ns string) typedcorev1.ConfigMapInterface {
	return hookCMs{c.CoreV1Interface.ConfigMaps(ns), c.hook}
}

type hookCMs struct {
	typedcorev1.ConfigMapInterface
	hook func()
}

func (c hookCMs) Get(ctx context.Context, name string, o metav1.GetOptions) (*corev1.ConfigMap, error) {
	cm, err := c.ConfigMapInterface.Get(ctx, name, o)
	c.hook()
	return cm, err
}
