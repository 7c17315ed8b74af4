package kube

import (
	"context"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// fakeReviewer maps tokens to identities; unknown tokens are invalid.
type fakeReviewer map[string]PodIdentity

func (f fakeReviewer) Review(_ context.Context, token string) (PodIdentity, error) {
	if id, ok := f[token]; ok {
		return id, nil
	}
	return PodIdentity{}, invalidPodToken("bad token")
}

func withUID(p *corev1.Pod, uid string) *corev1.Pod { p.UID = types.UID(uid); return p }

func startResolver(t *testing.T, o ResolverOptions, pods ...*corev1.Pod) *Resolver {
	t.Helper()
	var objs []*corev1.Pod
	objs = append(objs, pods...)
	cs := fake.NewClientset()
	for _, p := range objs {
		if err := cs.Tracker().Add(p); err != nil {
			t.Fatal(err)
		}
	}
	o.Namespace = "domino-compute"
	r, err := NewResolver(cs, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := r.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return r
}

func wantKind(t *testing.T, err error, kind model.Kind, code string) {
	t.Helper()
	if k, c, _ := model.Classify(err); k != kind || c != code {
		t.Fatalf("want %v/%s, got %v", kind, code, err)
	}
}

func TestResolverPodBinding(t *testing.T) {
	rev := fakeReviewer{
		"tok-w1":      {Namespace: "domino-compute", ServiceAccount: "run-r1", PodName: "r1-worker-1", PodUID: "uid-w1"},
		"tok-other":   {Namespace: "domino-compute", ServiceAccount: "run-r2", PodName: "r2-pod", PodUID: "uid-r2"},
		"tok-olduid":  {Namespace: "domino-compute", ServiceAccount: "run-r1", PodName: "r1-worker-1", PodUID: "uid-previous"},
		"tok-otherns": {Namespace: "elsewhere", ServiceAccount: "run-r1", PodName: "r1-worker-1", PodUID: "uid-w1"},
	}
	pods := []*corev1.Pod{
		withUID(pod("r1-master", "r1", "u1", corev1.PodRunning, nil), "uid-m"),
		withUID(pod("r1-worker-1", "r1", "u1", corev1.PodRunning, nil), "uid-w1"),
		withUID(pod("r2-pod", "r2", "u2", corev1.PodRunning, nil), "uid-r2"),
	}
	tests := []struct {
		name     string
		require  bool
		token    string
		wantPod  string
		wantKind model.Kind
		wantCode string
	}{
		{name: "no token, not required: first pod", wantPod: "r1-master"},
		{name: "no token, required", require: true, wantKind: model.KindForbidden, wantCode: "pod_token_required"},
		{name: "token binds to its pod", token: "tok-w1", wantPod: "r1-worker-1"},
		{name: "token binds when required", require: true, token: "tok-w1", wantPod: "r1-worker-1"},
		{name: "another run's pod token", token: "tok-other", wantKind: model.KindForbidden, wantCode: "pod_token_mismatch"},
		{name: "token of a previous pod with the same name", token: "tok-olduid", wantKind: model.KindForbidden, wantCode: "pod_token_mismatch"},
		{name: "token from another namespace", token: "tok-otherns", wantKind: model.KindForbidden, wantCode: "pod_token_mismatch"},
		{name: "invalid token", token: "garbage", wantKind: model.KindForbidden, wantCode: "pod_token_invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := startResolver(t, ResolverOptions{PodTokens: rev, RequirePodToken: tc.require}, pods...)
			w, err := r.Resolve(context.Background(), model.WorkloadRequest{RunID: "r1", PodToken: tc.token, CallerID: "u1", Username: "alice"})
			if tc.wantCode != "" {
				wantKind(t, err, tc.wantKind, tc.wantCode)
				return
			}
			if err != nil || w.Pod != tc.wantPod {
				t.Fatalf("got %+v, %v; want pod %s", w, err, tc.wantPod)
			}
		})
	}
	if _, err := NewResolver(fake.NewClientset(), ResolverOptions{Namespace: "x", RequirePodToken: true}); err == nil {
		t.Fatal("RequirePodToken without a reviewer accepted")
	}
}

func TestResolverPerUserServiceAccounts(t *testing.T) {
	p1 := pod("a-pod", "ra", "u1", corev1.PodRunning, nil)
	p1.Spec.ServiceAccountName = "user-alice"
	p2 := pod("b-pod", "rb", "u1", corev1.PodRunning, nil) // still on its run SA
	r := startResolver(t, ResolverOptions{PerUserServiceAccounts: true}, p1, p2)
	alice := sdk.Identity{ID: "u1", Username: "alice"}
	w, err := r.Resolve(context.Background(), model.WorkloadRequest{RunID: "ra", CallerID: alice.ID, Username: alice.Username})
	if err != nil || w.ServiceAccount != "user-alice" {
		t.Fatalf("%+v %v", w, err)
	}
	_, err = r.Resolve(context.Background(), model.WorkloadRequest{RunID: "rb", CallerID: alice.ID, Username: alice.Username})
	wantKind(t, err, model.KindConflict, "service_account_mismatch")
}

func TestPodIdentity(t *testing.T) {
	good := authenticationv1.TokenReviewStatus{
		Authenticated: true, Audiences: []string{"sts.amazonaws.com"},
		User: authenticationv1.UserInfo{Username: "system:serviceaccount:domino-compute:run-r1",
			Extra: map[string]authenticationv1.ExtraValue{ExtraPodName: {"p"}, ExtraPodUID: {"u"}}},
	}
	mut := func(f func(*authenticationv1.TokenReviewStatus)) authenticationv1.TokenReviewStatus {
		s := *good.DeepCopy()
		f(&s)
		return s
	}
	tests := []struct {
		name string
		st   authenticationv1.TokenReviewStatus
		ok   bool
	}{
		{"valid", good, true},
		{"not authenticated", mut(func(s *authenticationv1.TokenReviewStatus) { s.Authenticated = false }), false},
		{"other audience", mut(func(s *authenticationv1.TokenReviewStatus) { s.Audiences = []string{"https://kubernetes.default.svc"} }), false},
		{"a user, not a service account", mut(func(s *authenticationv1.TokenReviewStatus) { s.User.Username = "alice" }), false},
		{"not pod-bound", mut(func(s *authenticationv1.TokenReviewStatus) { s.User.Extra = nil }), false},
		{"two pod names", mut(func(s *authenticationv1.TokenReviewStatus) { s.User.Extra[ExtraPodName] = []string{"a", "b"} }), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id, err := podIdentity(tc.st, "sts.amazonaws.com")
			if tc.ok != (err == nil) {
				t.Fatalf("ok=%v err=%v", tc.ok, err)
			}
			if tc.ok && (id != PodIdentity{Namespace: "domino-compute", ServiceAccount: "run-r1", PodName: "p", PodUID: "u"}) {
				t.Fatalf("%+v", id)
			}
			if !tc.ok {
				wantKind(t, err, model.KindForbidden, "pod_token_invalid")
			}
		})
	}
}
