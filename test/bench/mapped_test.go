package bench

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

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
//
// Two comparisons are printed. "Separate": /healthz alone, then the maps
// alone (each kind sets its own load: healthz runs at several times the
// map's rate, so its queueing is shorter). "Interleaved": the 64 clients
// send healthz and map alternately, so both kinds are in flight together
// and see the same load and the same CPU; the difference between their
// latencies is the map's own cost. The target is map p99 ≤ 1.5×
// healthz p99 in the same run; both ratios are printed beside it. Nothing
// fails on time.
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
		// serve's logger (JSON at info, as --log-format and --log-level
		// default to), writing to io.Discard: every map logs its request and
		// its policy decision, as in production.
		st := devstacktest.Start(b, devstack.Options{Logger: hclog.New(&hclog.LoggerOptions{
			Name: "irsa-broker", Output: io.Discard, Level: hclog.Info, JSONFormat: true})})
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
		// Interleaved: even requests are healthz, odd ones maps.
		mixed, mixedWall := drive(b, 2*requests, func(i int) (*http.Request, error) {
			if i%2 == 0 {
				return healthz(st)(i)
			}
			return mapReq(st, (i/2)%mappedRuns)
		})

		b.StopTimer()
		st.Sim.SetLatency("", 0)
		calls := 0
		for _, n := range st.Sim.Calls() {
			calls += n
		}
		var mixBase, mixMap []time.Duration
		for i, l := range mixed {
			if i%2 == 0 {
				mixBase = append(mixBase, l)
			} else {
				mixMap = append(mixMap, l)
			}
		}
		report(b, "separate: GET /healthz", base, baseWall)
		report(b, "separate: POST map", lat, wall)
		b.Logf("interleaved: %d healthz + %d maps, %d clients, %.0f req/s in all", len(mixBase), len(mixMap), clients, float64(len(mixed))/mixedWall.Seconds())
		fmt.Printf("%s\n", mappedTable(base, lat, mixBase, mixMap)) // stdout: go test cuts a benchmark's log to 10 lines

		ratio := float64(percentile(lat, .99)) / float64(percentile(base, .99))
		mixRatio := float64(percentile(mixMap, .99)) / float64(percentile(mixBase, .99))
		b.ReportMetric(ratio, "p99-ratio")
		b.ReportMetric(mixRatio, "p99-ratio-interleaved")
		b.ReportMetric(float64(calls), "iam-calls")
		b.Logf("IAM calls while measuring: %d (simulated IAM latency %s)", calls, iamLatency)
		b.StartTimer()
	}
}

// mappedTable prints p50/p99 of healthz and of the map, measured separately
// and interleaved, with the map/healthz ratios beside the target.
func mappedTable(base, lat, mixBase, mixMap []time.Duration) string {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }
	row := func(sb *strings.Builder, label string, h, m []time.Duration) {
		r50 := float64(percentile(m, .5)) / float64(percentile(h, .5))
		r99 := float64(percentile(m, .99)) / float64(percentile(h, .99))
		fmt.Fprintf(sb, "%-12s %10s %10s %10s %10s %7.2f× %7.2f× %8s\n", label,
			ms(percentile(h, .5)), ms(percentile(h, .99)), ms(percentile(m, .5)), ms(percentile(m, .99)), r50, r99, "≤ 1.50×")
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n%-12s %10s %10s %10s %10s %8s %8s %8s\n", "", "healthz p50", "p99", "map p50", "p99", "p50 ×", "p99 ×", "target")
	row(&sb, "separate", base, lat)
	row(&sb, "interleaved", mixBase, mixMap)
	return sb.String()
}
