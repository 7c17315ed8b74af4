package backoff

import (
	"context"
	"math"
	"math/rand/v2"
	"time"
)

// Policy is capped exponential backoff with jitter: attempt n (from 0) waits
// Initial·Multiplier^n, capped at Max, of which the fraction Jitter is random.
// A server's Retry-After, when longer, replaces the computed delay.
type Policy struct {
	Initial    time.Duration
	Max        time.Duration
	Multiplier float64 // default 2
	Jitter     float64 // 0..1, default 0.5 ("equal jitter")
	// Rand returns a number in [0,1); default math/rand/v2.
	Rand func() float64
}

// Default is the broker-retry policy: 1 s doubling to 1 min.
var Default = Policy{Initial: time.Second, Max: time.Minute, Multiplier: 2, Jitter: 0.5}

// Delay is the wait before retry number attempt (0 = first retry). retryAfter
// is the server's hint (0 when none); it is honoured even beyond Max.
func (p Policy) Delay(attempt int, retryAfter time.Duration) time.Duration {
	initial, maxD, mult, jitter := p.Initial, p.Max, p.Multiplier, p.Jitter
	if initial <= 0 {
		initial = time.Second
	}
	if maxD < initial {
		maxD = initial
	}
	if mult < 1 {
		mult = 2
	}
	if jitter < 0 || jitter > 1 {
		jitter = 0.5
	}
	rnd := p.Rand
	if rnd == nil {
		rnd = rand.Float64
	}
	base := float64(maxD)
	if attempt >= 0 {
		base = math.Min(float64(initial)*math.Pow(mult, float64(attempt)), float64(maxD))
	}
	d := time.Duration(base*(1-jitter) + base*jitter*rnd())
	if retryAfter > d {
		d = retryAfter
	}
	return d
}

// Clock is the time source of retry loops.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// System is the real clock.
var System Clock = systemClock{}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Sleep waits d on c or until ctx ends, returning ctx.Err() in that case.
func Sleep(ctx context.Context, c Clock, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-c.After(d):
		return nil
	}
}
