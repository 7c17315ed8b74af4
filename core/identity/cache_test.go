package identity

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/irsa-broker/irsa-broker/core/metrics"
	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// countingProvider is a fake provider for the cache's pure logic.
type countingProvider struct {
	calls atomic.Int64
	err   error
}

func (p *countingProvider) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "fake"}, p.err
}
func (p *countingProvider) Configure(context.Context, []byte) error { return nil }
func (p *countingProvider) Authenticate(_ context.Context, c sdk.Credentials) (sdk.Identity, error) {
	p.calls.Add(1)
	if p.err != nil {
		return sdk.Identity{}, p.err
	}
	if c.Token != "good" {
		return sdk.Identity{}, sdk.ErrUnauthenticated
	}
	return sdk.Identity{ID: "u1", Username: "alice"}, nil
}

func TestCache(t *testing.T) {
	now := time.Unix(1000, 0)
	p := &countingProvider{}
	m := metrics.New()
	a := New(p, Options{TTL: 30 * time.Second, NegativeTTL: 2 * time.Second, Metrics: m, Now: func() time.Time { return now }})
	ctx := context.Background()
	good := sdk.Credentials{Token: "good", Header: sdk.HeaderAuthorization}
	for range 5 {
		if id, err := a.Authenticate(ctx, good); err != nil || id.ID != "u1" {
			t.Fatal(id, err)
		}
	}
	if n := p.calls.Load(); n != 1 {
		t.Fatalf("provider called %d times within TTL", n)
	}
	// The same token in the other header is another credential.
	if _, err := a.Authenticate(ctx, sdk.Credentials{Token: "good", Header: sdk.HeaderDominoAPIKey}); err != nil {
		t.Fatal(err)
	}
	if n := p.calls.Load(); n != 2 {
		t.Fatalf("calls = %d", n)
	}
	now = now.Add(31 * time.Second)
	a.Authenticate(ctx, good)
	if n := p.calls.Load(); n != 3 {
		t.Fatalf("expired entry reused: calls = %d", n)
	}
	// Negative caching, briefly.
	bad := sdk.Credentials{Token: "bad", Header: sdk.HeaderAuthorization}
	for range 3 {
		if _, err := a.Authenticate(ctx, bad); !errors.Is(err, sdk.ErrUnauthenticated) {
			t.Fatal(err)
		}
	}
	if n := p.calls.Load(); n != 4 {
		t.Fatalf("rejections not cached: calls = %d", n)
	}
	now = now.Add(3 * time.Second)
	a.Authenticate(ctx, bad)
	if n := p.calls.Load(); n != 5 {
		t.Fatalf("negative entry outlived its TTL: calls = %d", n)
	}
}

func TestUnavailableIsNotCached(t *testing.T) {
	p := &countingProvider{err: errors.New("connection refused")}
	a := New(p, Options{})
	for range 2 {
		_, err := a.Authenticate(context.Background(), sdk.Credentials{Token: "good"})
		if !errors.Is(err, sdk.ErrUnavailable) {
			t.Fatalf("err = %v", err)
		}
	}
	if p.calls.Load() != 2 {
		t.Fatal("an outage was cached")
	}
	if err := a.Healthy(context.Background()); !errors.Is(err, sdk.ErrUnavailable) {
		t.Fatalf("Healthy = %v", err)
	}
	if _, err := a.Authenticate(context.Background(), sdk.Credentials{}); !errors.Is(err, sdk.ErrUnauthenticated) {
		t.Fatalf("empty credentials: %v", err)
	}
}

func TestBounded(t *testing.T) {
	p := &countingProvider{}
	a := New(p, Options{MaxEntries: 10})
	for i := range 100 {
		a.Authenticate(context.Background(), sdk.Credentials{Token: string(rune('a'+i%26)) + "x" + string(rune(i))})
	}
	if n := a.cache.Len(); n > 10 {
		t.Fatalf("cache holds %d entries, bound 10", n)
	}
}

// A full cache drops its least recently used entry, not everything.
func TestFullCacheEvictsLeastRecentlyUsed(t *testing.T) {
	p := &countingProvider{}
	a := New(p, Options{MaxEntries: 2})
	ctx := context.Background()
	for _, tok := range []string{"good", "x1", "good", "x2", "good"} {
		a.Authenticate(ctx, sdk.Credentials{Token: tok})
	}
	if n := p.calls.Load(); n != 3 {
		t.Fatalf("provider calls = %d, want 3 (good, x1, x2)", n)
	}
	a.Authenticate(ctx, sdk.Credentials{Token: "x1"}) // evicted by x2
	if n := p.calls.Load(); n != 4 {
		t.Fatalf("provider calls = %d, want 4: x1 should have been evicted", n)
	}
}
