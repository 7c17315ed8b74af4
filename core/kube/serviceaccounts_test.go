package kube

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/irsa-broker/irsa-broker/core/model"
)

func TestServiceAccounts(t *testing.T) {
	ctx := context.Background()
	cs := fake.NewClientset(&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "theirs", Namespace: "domino-compute"}})
	s := NewServiceAccounts(cs, "domino-compute", nil)

	if err := s.Create(ctx, "user-alice"); err != nil {
		t.Fatal(err)
	}
	sa, err := cs.CoreV1().ServiceAccounts("domino-compute").Get(ctx, "user-alice", metav1.GetOptions{})
	if err != nil || sa.Labels[LabelManagedBy] != ManagedBy {
		t.Fatalf("created %+v %v", sa, err)
	}
	if err := s.Create(ctx, "user-alice"); err != nil {
		t.Fatalf("create is not idempotent: %v", err)
	}
	wantKind(t, s.Create(ctx, "theirs"), model.KindConflict, "service_account_unmanaged")
	wantKind(t, s.Create(ctx, "Bad*Name"), model.KindInvalid, "invalid_service_account_name")
	wantKind(t, s.Delete(ctx, "theirs"), model.KindConflict, "service_account_unmanaged")
	if _, err := cs.CoreV1().ServiceAccounts("domino-compute").Get(ctx, "theirs", metav1.GetOptions{}); err != nil {
		t.Fatalf("an unmanaged service account was deleted: %v", err)
	}
	if err := s.Delete(ctx, "user-alice"); err != nil {
		t.Fatal(err)
	}
	wantKind(t, s.Delete(ctx, "user-alice"), model.KindNotFound, "service_account_not_found")
}

func TestUserServiceAccountName(t *testing.T) {
	tests := []struct{ user, want string }{
		{"alice", "user-alice"},
		{"bob-2", "user-bob-2"},
		{"Alice", "user-alice.3bc51062973c"},
		{"jane.doe@example.com", "user-jane-doe-example-com.ef0fd6a1bd74"},
		{"***", "user-x.e0b3e1cd2e3e"},
	}
	for _, tc := range tests {
		got, err := UserServiceAccountName(tc.user)
		if err != nil {
			t.Fatal(err)
		}
		// The hash part is checked by shape: recomputing it here would restate the code.
		if strings.Contains(tc.want, ".") {
			base, _, _ := strings.Cut(tc.want, ".")
			gb, gh, ok := strings.Cut(got, ".")
			if !ok || gb != base || len(gh) != 12 {
				t.Errorf("%q → %q, want %s.<12 hex>", tc.user, got, base)
			}
			continue
		}
		if got != tc.want {
			t.Errorf("%q → %q, want %q", tc.user, got, tc.want)
		}
	}
	if _, err := UserServiceAccountName(""); err == nil {
		t.Fatal("empty username accepted")
	}
	a, _ := UserServiceAccountName("Jane.Doe")
	b, _ := UserServiceAccountName("jane-doe")
	c, _ := UserServiceAccountName("jane_doe")
	if a == b || a == c || b == c {
		t.Fatalf("collision: %s %s %s", a, b, c)
	}
}

// FuzzUserServiceAccountName: every username gives a valid service-account
// name (so a valid, wildcard-free trust subject), deterministically.
func FuzzUserServiceAccountName(f *testing.F) {
	for _, s := range []string{"alice", "Jane.Doe@x.io", "a*b?c", "----", "ümlaut", strings.Repeat("x", 300), "user-x.0123"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, user string) {
		name, err := UserServiceAccountName(user)
		if user == "" {
			if err == nil {
				t.Fatal("empty username accepted")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := model.ValidateName("domino-compute", name); err != nil || len(name) > 63 {
			t.Fatalf("%q → invalid %q: %v", user, name, err)
		}
		if again, _ := UserServiceAccountName(user); again != name {
			t.Fatalf("not deterministic: %q %q", name, again)
		}
	})
}
