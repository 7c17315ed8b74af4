package api

import (
	"net/url"
	"testing"
	"time"

	"github.com/irsa-broker/irsa-broker/core/policy"
)

func TestParseDecisionQuery(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		raw  string
		want policy.DecisionQuery
	}{
		{"", policy.DecisionQuery{Limit: DefaultDecisionLimit}},
		{"user=alice&since=15m&path=grants&limit=5", policy.DecisionQuery{User: "alice", Since: now.Add(-15 * time.Minute), Path: policy.GrantsPath, Limit: 5}},
		{"since=2026-12-01T10:00:00Z&path=irsa/authz/allow", policy.DecisionQuery{Since: now.Add(-2 * time.Hour), Path: policy.AllowPath, Limit: DefaultDecisionLimit}},
		{"limit=5000", policy.DecisionQuery{Limit: 1000}},
	} {
		v, _ := url.ParseQuery(tc.raw)
		got, err := parseDecisionQuery(v, now, 1000)
		if err != nil || !got.Since.Equal(tc.want.Since) || got.User != tc.want.User || got.Path != tc.want.Path || got.Limit != tc.want.Limit {
			t.Errorf("%q: %+v, %v; want %+v", tc.raw, got, err, tc.want)
		}
	}
}

// FuzzParseDecisionQuery: any query string either is refused with a 400 or
// gives a query whose limit is within 1..capacity and whose path is known.
func FuzzParseDecisionQuery(f *testing.F) {
	for _, s := range []string{"user=alice&since=15m&limit=3", "since=2026-12-01T10:00:00Z", "limit=-1", "path=allow", "since=-5m", "limit=99999999999999999999"} {
		f.Add(s, 10)
	}
	f.Fuzz(func(t *testing.T, raw string, capacity int) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, err := parseDecisionQuery(v, time.Now(), capacity)
		if err != nil {
			p := classify(err)
			if p.status != 400 || p.code != "invalid_parameter" {
				t.Fatalf("%q: %v (%d %s)", raw, err, p.status, p.code)
			}
			return
		}
		if q.Limit < 1 || q.Limit > max(capacity, 1) {
			t.Fatalf("%q: limit %d with capacity %d", raw, q.Limit, capacity)
		}
		if q.Path != "" && q.Path != policy.GrantsPath && q.Path != policy.AllowPath {
			t.Fatalf("%q: path %q", raw, q.Path)
		}
	})
}
