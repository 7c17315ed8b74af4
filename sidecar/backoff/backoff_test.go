package backoff

import (
	"context"
	"errors"
	"testing"
	"time"
)

func fixed(v float64) func() float64 { return func() float64 { return v } }

func TestDelay(t *testing.T) {
	p := Policy{Initial: time.Second, Max: 8 * time.Second, Multiplier: 2, Jitter: 0.5}
	tests := []struct {
		name       string
		attempt    int
		rnd        float64
		retryAfter time.Duration
		want       time.Duration
	}{
		{"first, max jitter", 0, 0.999999999, 0, time.Second - 1},
		{"first, no jitter draw", 0, 0, 0, 500 * time.Millisecond},
		{"second", 1, 0.5, 0, 1500 * time.Millisecond},
		{"third", 2, 0, 0, 2 * time.Second},
		{"capped", 10, 0, 0, 4 * time.Second},
		{"huge attempt stays capped", 5000, 0.5, 0, 6 * time.Second},
		{"retry-after longer wins", 0, 0, 7 * time.Second, 7 * time.Second},
		{"retry-after beyond max honoured", 0, 0, 30 * time.Second, 30 * time.Second},
		{"retry-after shorter ignored", 3, 0, time.Second, 4 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := p
			p.Rand = fixed(tt.rnd)
			if got := p.Delay(tt.attempt, tt.retryAfter); got != tt.want {
				t.Errorf("Delay(%d, %v) = %v, want %v", tt.attempt, tt.retryAfter, got, tt.want)
			}
		})
	}
}

func TestDelayBoundsWithRealJitter(t *testing.T) {
	p := Policy{Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 3, Jitter: 1}
	seen := map[time.Duration]bool{}
	for i := 0; i < 200; i++ {
		for a := 0; a < 6; a++ {
			d := p.Delay(a, 0)
			if d < 0 || d > time.Second {
				t.Fatalf("Delay(%d) = %v out of [0, 1s]", a, d)
			}
			seen[d] = true
		}
	}
	if len(seen) < 100 {
		t.Errorf("only %d distinct delays: jitter is not random", len(seen))
	}
}

func TestDefaultsForZeroPolicy(t *testing.T) {
	var p Policy
	p.Rand = fixed(1)
	if got := p.Delay(0, 0); got != time.Second {
		t.Errorf("zero policy first delay = %v, want 1s", got)
	}
}

func TestSleepWithFakeClock(t *testing.T) {
	c := NewFakeClock(time.Unix(1000, 0))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Sleep(ctx, c, 3*time.Second) }()
	if err := c.WaitForWaits(ctx, 1); err != nil {
		t.Fatal(err)
	}
	c.Advance(2 * time.Second)
	select {
	case <-done:
		t.Fatal("woke before the deadline")
	case <-time.After(20 * time.Millisecond):
	}
	c.Advance(time.Second)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := c.Now(); !got.Equal(time.Unix(1003, 0)) {
		t.Errorf("now = %v", got)
	}

	cctx, ccancel := context.WithCancel(ctx)
	go func() { done <- Sleep(cctx, c, time.Hour) }()
	if err := c.WaitForWaits(ctx, 2); err != nil {
		t.Fatal(err)
	}
	ccancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want Canceled", err)
	}
	if w := c.Waits(); len(w) != 2 || w[0] != 3*time.Second || w[1] != time.Hour {
		t.Errorf("waits = %v", w)
	}
}

// TestRetryLoopWithFakeClock drives a retry loop shaped like the sidecar's
// through the fake clock: the waits it asks for are exactly the policy's.
func TestRetryLoopWithFakeClock(t *testing.T) {
	c := NewFakeClock(time.Unix(0, 0))
	p := Policy{Initial: time.Second, Max: 4 * time.Second, Multiplier: 2, Jitter: 0.5, Rand: fixed(1)}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	failures := 5
	calls := 0
	done := make(chan error, 1)
	go func() {
		for attempt := 0; ; attempt++ {
			calls++
			if calls > failures {
				done <- nil
				return
			}
			if err := Sleep(ctx, c, p.Delay(attempt, 0)); err != nil {
				done <- err
				return
			}
		}
	}()
	for i := 1; i <= failures; i++ {
		if err := c.WaitForWaits(ctx, i); err != nil {
			t.Fatal(err)
		}
		c.Advance(time.Minute)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second}
	got := c.Waits()
	if len(got) != len(want) {
		t.Fatalf("waits = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("waits = %v, want %v", got, want)
		}
	}
	if !c.Now().Equal(time.Unix(0, 0).Add(5 * time.Minute)) {
		t.Errorf("clock = %v", c.Now())
	}
}
