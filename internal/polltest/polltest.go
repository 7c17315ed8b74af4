package polltest

import (
	"testing"
	"time"
)

const (
	// Interval is how often a condition is checked.
	Interval = 10 * time.Millisecond
	// DefaultTimeout bounds a wait when the test has no deadline
	// (benchmarks, or -timeout 0).
	DefaultTimeout = 30 * time.Second
	// MaxWait bounds any one wait: a broken behaviour fails in minutes,
	// not at the end of go test's 10-minute timeout, while a slow machine
	// still gets far more time than any condition here needs.
	MaxWait = 2 * time.Minute
	// Margin is kept from the test's deadline so that a wait that runs out
	// fails the test with a message, and its clean-ups run, before the test
	// binary's timeout panics. It is at most half the time left.
	Margin = 5 * time.Second
)

// Until checks cond at once and then every Interval until it holds. When
// the test's deadline (less Margin, at most MaxWait away), or DefaultTimeout
// without one, passes first, it fails t with "timed out waiting for <what>".
//
// cond runs on the caller's goroutine, so it may itself fail t.
func Until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	UntilErr(t, what, func() (bool, error) { return cond(), nil })
}

// UntilErr is Until for a condition that says why it does not hold yet: it
// waits until cond returns true, retrying on errors, and a timeout reports
// the last error.
func UntilErr(t testing.TB, what string, cond func() (bool, error)) {
	t.Helper()
	timer := time.NewTimer(time.Until(deadline(t, time.Now())))
	defer timer.Stop()
	tick := time.NewTicker(Interval)
	defer tick.Stop()
	for {
		ok, err := cond()
		if ok {
			return
		}
		select {
		case <-timer.C:
			if err != nil {
				t.Fatalf("timed out waiting for %s: %v", what, err)
			} else {
				t.Fatalf("timed out waiting for %s", what)
			}
			return
		case <-tick.C:
		}
	}
}

// deadline is when a wait starting at now gives up.
func deadline(t testing.TB, now time.Time) time.Time {
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if end, ok := d.Deadline(); ok {
			end = end.Add(-min(Margin, end.Sub(now)/2))
			if cap := now.Add(MaxWait); end.After(cap) {
				return cap
			}
			return end
		}
	}
	return now.Add(DefaultTimeout)
}
