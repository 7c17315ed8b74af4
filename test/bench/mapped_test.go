package bench

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/irsa-broker/irsa-broker/internal/devstack"
	"github.com/irsa-broker/irsa-broker/internal/devstack/devstacktest"
)

// BenchmarkMapAlreadyMapped measures POST /map_iam_roles_to_pod_sa for runs
// whose subjects are already in both proxy roles (what every sidecar refresh
// sends), beside GET /healthz, both from 64 concurrent clients in the same
// run. The dev stack runs with serve's defaults, so the trust writer answers
// such maps from the document of its last round (--trust-cache-ttl, 30 s).
// While they are measured the simulator adds 50 ms to every IAM call: a map
// that still called IAM would show it in its latency, and the IAM calls made
// during the measurement are printed (0 expected).
func BenchmarkMapAlreadyMapped(b *testing.B) {
	const (
		mappedRuns = 200
		requests   = 2000
		iamLatency = 50 * time.Millisecond
	)
	mapReq := func(st *devstack.Stack, run int) (*http.Request, error) {
		r, err := http.NewRequest("POST", st.BrokerURL+"/map_iam_roles_to_pod_sa", strings.NewReader(fmt.Sprintf(`{"run_id":"mapped-%04d"}`, run)))
		if err == nil {
			r.Header.Set("Authorization", "Bearer alice-token")
		}
		return r, err
	}
	healthz := func(st *devstack.Stack) func(int) (*http.Request, error) {
		return func(int) (*http.Request, error) { return http.NewRequest("GET", st.BrokerURL+"/healthz", nil) }
	}
	for range b.N {
		b.StopTimer()
		st := devstacktest.Start(b, devstack.Options{})
		st.Sim.SetQuota(devstack.EKSAccount, 1<<20)
		// Map every run once (each adds its subject to both proxy roles), and
		// warm the connections.
		drive(b, mappedRuns, func(i int) (*http.Request, error) { return mapReq(st, i) })
		drive(b, clients, healthz(st))
		st.Sim.SetLatency("", iamLatency)
		st.Sim.ResetCalls()
		b.StartTimer()

		base, baseWall := drive(b, requests, healthz(st))
		lat, wall := drive(b, requests, func(i int) (*http.Request, error) { return mapReq(st, i%mappedRuns) })

		b.StopTimer()
		st.Sim.SetLatency("", 0)
		calls := 0
		for _, n := range st.Sim.Calls() {
			calls += n
		}
		report(b, "baseline GET /healthz", base, baseWall)
		report(b, "POST map, already mapped", lat, wall)
		ratio := float64(percentile(lat, .99)) / float64(percentile(base, .99))
		b.ReportMetric(ratio, "p99-ratio")
		b.ReportMetric(float64(calls), "iam-calls")
		b.Logf("map p99 / healthz p99 = %.2f; IAM calls while measuring: %d (simulated IAM latency %s)", ratio, calls, iamLatency)
		b.StartTimer()
	}
}
