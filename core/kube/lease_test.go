package kube

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/irsa-broker/irsa-broker/internal/polltest"
)

const leaseRole = "arn:aws:iam::946429944765:role/acme-proxy"

// A second replica waits for the first to unlock, then takes the Lease.
func TestLeaseLockerWaitsForTheHolder(t *testing.T) {
	cs := fake.NewClientset()
	a := NewLeaseLocker(cs, LeaseLockerOptions{Namespace: "domino-field", Identity: "a"})
	b := NewLeaseLocker(cs, LeaseLockerOptions{Namespace: "domino-field", Identity: "b", MaxRetryInterval: 5 * time.Millisecond})
	ctx := context.Background()

	unlockA, err := a.Lock(ctx, leaseRole)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	var unlockB func()
	go func() {
		var err error
		unlockB, err = b.Lock(ctx, leaseRole)
		got <- err
	}()
	// b keeps retrying while a holds the Lease: wait until it has looked
	// at least twice (it saw the holder), then let a go.
	polltest.Until(t, "b to retry", func() bool {
		select {
		case err := <-got:
			t.Fatalf("b locked while a held the Lease: %v", err)
		default:
		}
		return gets(cs) >= 3
	})
	unlockA()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("b did not take the released Lease")
	}
	defer unlockB()
	lease, err := cs.CoordinationV1().Leases("domino-field").Get(ctx, LeaseName(leaseRole), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if holder(lease) != "b" || lease.Annotations[AnnotationRole] != leaseRole {
		t.Fatalf("holder %q, annotations %v", holder(lease), lease.Annotations)
	}
}

// While another replica holds the Lease, Lock gives up when ctx ends.
func TestLeaseLockerHonoursContext(t *testing.T) {
	cs := fake.NewClientset()
	a := NewLeaseLocker(cs, LeaseLockerOptions{Namespace: "domino-field", Identity: "a"})
	b := NewLeaseLocker(cs, LeaseLockerOptions{Namespace: "domino-field", Identity: "b"})
	unlock, err := a.Lock(context.Background(), leaseRole)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = b.Lock(ctx, leaseRole)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "held by another replica") {
		t.Fatalf("Lock = %v", err)
	}
}

func TestLeaseRetryBackoff(t *testing.T) {
	l := NewLeaseLocker(fake.NewClientset(), LeaseLockerOptions{MaxRetryInterval: 40 * time.Millisecond})
	next := l.retry()
	ceiling := 5 * time.Millisecond
	for i := range 20 {
		d := next()
		if d < ceiling/2 || d > ceiling {
			t.Fatalf("delay %d = %v, want within [%v, %v]", i, d, ceiling/2, ceiling)
		}
		ceiling = min(2*ceiling, 40*time.Millisecond)
	}
}

func gets(cs *fake.Clientset) int {
	n := 0
	for _, a := range cs.Actions() {
		if a.GetVerb() == "get" && a.GetResource().Resource == "leases" {
			n++
		}
	}
	return n
}
