package policy

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/irsa-broker/irsa-broker/core/model"
)

// BenchmarkGrantsDefaultPolicy: 100 orgs × 3 role pairs mapped, a user in 10
// of them (30 grants). Target: under 50µs per decision.
func BenchmarkGrantsDefaultPolicy(b *testing.B) {
	snap := model.Snapshot{Revision: "bench", Mappings: map[string]model.Mapping{}}
	for i := range 100 {
		org := fmt.Sprintf("org-%03d", i)
		m := model.Mapping{Org: org, Multi: true}
		for j := range 3 {
			name := fmt.Sprintf("role-%03d-%d", i, j)
			m.Pairs = append(m.Pairs, model.RolePair{IAMRoleARN: arn("524112250363", name), ProxyIAMRoleARN: arn("946429944765", name), UpdateTrustPolicy: true})
		}
		snap.Mappings[org] = m
	}
	orgs := make([]string, 0, 10)
	for i := range 10 {
		orgs = append(orgs, fmt.Sprintf("org-%03d", i*10))
	}
	in := user(orgs...)
	e := newEngine(b, Options{})
	ctx := context.Background()
	d, err := e.Grants(ctx, in, snap)
	if err != nil || len(d.Grants) != 30 {
		b.Fatalf("warm-up: %d grants, %v", len(d.Grants), err)
	}
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		if _, err := e.Grants(ctx, in, snap); err != nil {
			b.Fatal(err)
		}
	}
	// The machines running this are shared: wall-clock ns/op grows with the
	// load, so report the process CPU time per decision as well (it includes
	// the garbage collector's work on other threads).
	b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N)/1e3, "cpu-µs/op")
}

// processCPU is the user+system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
