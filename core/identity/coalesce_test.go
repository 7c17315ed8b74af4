package identity

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/irsa-broker/irsa-broker/internal/polltest"
	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// gatedProvider blocks every call until release is closed.
type gatedProvider struct {
	calls   atomic.Int64
	release chan struct{}
	expiry  time.Time
}

func (p *gatedProvider) Info(context.Context) (sdk.Info, error)  { return sdk.Info{Name: "gated"}, nil }
func (p *gatedProvider) Configure(context.Context, []byte) error { return nil }
func (p *gatedProvider) Authenticate(ctx context.Context, c sdk.Credentials) (sdk.Identity, error) {
	p.calls.Add(1)
	select {
	case <-p.release:
	case <-ctx.Done():
		return sdk.Identity{}, ctx.Err()
	}
	return sdk.Identity{ID: "u1", Username: "alice", Expiry: p.expiry}, nil
}

func TestConcurrentMissesShareOneCall(t *testing.T) {
	p := &gatedProvider{release: make(chan struct{})}
	// No caching: only the shared call can keep the provider to one call.
	a := New(p, Options{TTL: -1, NegativeTTL: -1})
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := a.Authenticate(context.Background(), sdk.Credentials{Token: "t"})
			if err == nil && id.ID != "u1" {
				err = errors.New("wrong identity " + id.ID)
			}
			errs <- err
		}()
	}
	// Answer once all callers wait for the one provider call.
	polltest.Until(t, "20 callers waiting", func() bool { return a.waiting.Load() == 20 })
	close(p.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := p.calls.Load(); n != 1 {
		t.Fatalf("provider called %d times for one credential", n)
	}
}

func TestWaiterHonorsItsContext(t *testing.T) {
	p := &gatedProvider{release: make(chan struct{})}
	defer close(p.release)
	a := New(p, Options{})
	go a.Authenticate(context.Background(), sdk.Credentials{Token: "t"})
	polltest.Until(t, "the provider call", func() bool { return p.calls.Load() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := a.Authenticate(ctx, sdk.Credentials{Token: "t"}); !errors.Is(err, sdk.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiter = %v", err)
	}
	if n := p.calls.Load(); n != 1 {
		t.Fatalf("the waiter called the provider: %d calls", n)
	}
}

func TestIdentityExpiryBoundsTheCache(t *testing.T) {
	now := time.Unix(1000, 0)
	p := &gatedProvider{release: make(chan struct{}), expiry: now.Add(5 * time.Second)}
	close(p.release)
	a := New(p, Options{TTL: 30 * time.Second, Now: func() time.Time { return now }})
	c := sdk.Credentials{Token: "t"}
	if _, err := a.Authenticate(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	now = now.Add(4 * time.Second)
	a.Authenticate(context.Background(), c)
	if p.calls.Load() != 1 {
		t.Fatal("not cached before expiry")
	}
	now = now.Add(2 * time.Second) // past the token's expiry, well within TTL
	if _, err := a.Authenticate(context.Background(), c); !errors.Is(err, sdk.ErrUnauthenticated) {
		t.Fatalf("expired identity = %v", err)
	}
	if p.calls.Load() != 2 {
		t.Fatal("an expired identity was served from the cache")
	}
}
