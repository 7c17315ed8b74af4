package bench

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/irsa-broker/irsa-broker/internal/devstack"
	"github.com/irsa-broker/irsa-broker/internal/devstack/devstacktest"
)

const (
	clients = 64
	runs    = 1000
)

// drive sends n requests from `clients` goroutines and returns per-request latencies.
func drive(b testing.TB, n int, req func(i int) (*http.Request, error)) ([]time.Duration, time.Duration) {
	b.Helper()
	tr := &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 60 * time.Second}
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				r, err := req(i)
				if err != nil {
					failed.Add(1)
					continue
				}
				t0 := time.Now()
				res, err := c.Do(r)
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				lat[i] = time.Since(t0)
				if res.StatusCode != 200 {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d of %d requests failed", f, n)
	}
	return lat, wall
}

func percentile(l []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), l...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(p*float64(len(s)-1))]
}

func report(b *testing.B, name string, lat []time.Duration, wall time.Duration) {
	p50, p99 := percentile(lat, .50), percentile(lat, .99)
	rps := float64(len(lat)) / wall.Seconds()
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(rps, "req/s")
	b.Logf("%-28s %5d requests, %d clients: p50 %7.2f ms  p99 %7.2f ms  %8.0f req/s", name, len(lat), clients,
		float64(p50.Microseconds())/1000, float64(p99.Microseconds())/1000, rps)
}

// BenchmarkMapEndToEnd measures POST /map_iam_roles_to_pod_sa on the dev stack
// (simulator latency 0): 1,000 distinct runs from 64 concurrent clients, each
// run adding its subject to two proxy roles. The baseline in the same run is
// GET /healthz over the same connections: the cost of HTTP alone.
func BenchmarkMapEndToEnd(b *testing.B) {
	for range b.N {
		st := devstacktest.Start(b, devstack.Options{})
		st.Sim.SetQuota(devstack.EKSAccount, 1<<20)

		base, baseWall := drive(b, runs, func(int) (*http.Request, error) {
			return http.NewRequest("GET", st.BrokerURL+"/healthz", nil)
		})
		st.Sim.ResetCalls()
		lat, wall := drive(b, runs, func(i int) (*http.Request, error) {
			r, err := http.NewRequest("POST", st.BrokerURL+"/map_iam_roles_to_pod_sa", strings.NewReader(fmt.Sprintf(`{"run_id":"bench-%04d"}`, i)))
			if err == nil {
				r.Header.Set("Authorization", "Bearer alice-token")
			}
			return r, err
		})
		b.StopTimer()
		report(b, "baseline GET /healthz", base, baseWall)
		report(b, "POST /map_iam_roles_to_pod_sa", lat, wall)
		writes := st.Sim.Calls()["UpdateAssumeRolePolicy"]
		b.ReportMetric(float64(writes), "iam-writes")
		b.Logf("IAM UpdateAssumeRolePolicy calls: %d for %d requests over 2 roles", writes, runs)
		b.StartTimer()
	}
}
