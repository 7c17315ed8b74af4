package polltest

import (
	"fmt"
	"testing"
	"time"
)

// fakeTB records Fatalf instead of ending the goroutine, and has the
// deadline it is given.
type fakeTB struct {
	testing.TB
	end    time.Time
	hasEnd bool
	fatals []string
}

func (f *fakeTB) Helper()                     {}
func (f *fakeTB) Deadline() (time.Time, bool) { return f.end, f.hasEnd }
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatals = append(f.fatals, fmt.Sprintf(format, args...))
}

// noDeadline is a testing.TB without a Deadline method, like *testing.B.
type noDeadline struct{ testing.TB }

func TestUntilReturnsOnceCondHolds(t *testing.T) {
	calls := 0
	Until(t, "the third check", func() bool { calls++; return calls == 3 })
	if calls != 3 {
		t.Fatalf("cond called %d times, want 3: Until went on after it held", calls)
	}

	// A condition that holds at once is not failed even when the deadline
	// has already passed: it is checked before anything is waited for.
	f := &fakeTB{end: time.Now().Add(-time.Second), hasEnd: true}
	calls = 0
	Until(f, "what holds", func() bool { calls++; return true })
	if calls != 1 || len(f.fatals) != 0 {
		t.Fatalf("cond called %d times, failures %q; want one call and no failure", calls, f.fatals)
	}
}

func TestUntilFailsAtTheDeadline(t *testing.T) {
	f := &fakeTB{end: time.Now().Add(100 * time.Millisecond), hasEnd: true}
	Until(f, "the impossible", func() bool { return false })
	if len(f.fatals) != 1 || f.fatals[0] != "timed out waiting for the impossible" {
		t.Fatalf("failures = %q, want one timeout", f.fatals)
	}
}

func TestUntilErrReportsTheLastError(t *testing.T) {
	f := &fakeTB{end: time.Now().Add(100 * time.Millisecond), hasEnd: true}
	calls := 0
	UntilErr(f, "the impossible", func() (bool, error) { calls++; return false, fmt.Errorf("attempt %d", calls) })
	want := fmt.Sprintf("timed out waiting for the impossible: attempt %d", calls)
	if len(f.fatals) != 1 || f.fatals[0] != want {
		t.Fatalf("failures = %q, want [%q]", f.fatals, want)
	}

	calls = 0
	UntilErr(t, "the third check", func() (bool, error) {
		calls++
		if calls < 3 {
			return false, fmt.Errorf("attempt %d", calls)
		}
		return true, nil
	})
	if calls != 3 {
		t.Fatalf("cond called %d times, want 3", calls)
	}
}

func TestDeadline(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name string
		tb   testing.TB
		want time.Time
	}{
		{"no Deadline method", noDeadline{}, now.Add(DefaultTimeout)},
		{"no deadline", &fakeTB{}, now.Add(DefaultTimeout)},
		{"far deadline less the margin", &fakeTB{end: now.Add(time.Minute), hasEnd: true}, now.Add(time.Minute - Margin)},
		{"near deadline less half the time left", &fakeTB{end: now.Add(4 * time.Second), hasEnd: true}, now.Add(2 * time.Second)},
		{"go test's 10 minutes capped", &fakeTB{end: now.Add(10 * time.Minute), hasEnd: true}, now.Add(MaxWait)},
	} {
		if got := deadline(tt.tb, now); !got.Equal(tt.want) {
			t.Errorf("%s: deadline = %v, want %v", tt.name, got, tt.want)
		}
	}
}
