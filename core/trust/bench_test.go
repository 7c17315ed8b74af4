package trust_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/irsa-broker/irsa-broker/core/iam"
	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/core/trust"
)

// ensurer is what both strategies offer the benchmark.
type ensurer func(ctx context.Context, roleARN, subject string) error

// mutexBaseline is the existing service's strategy: every request does its
// own GetRole + UpdateAssumeRolePolicy under one process-wide lock.
type mutexBaseline struct {
	mu sync.Mutex
	c  *iam.Client
}

func (m *mutexBaseline) ensure(ctx context.Context, roleARN, subject string) error {
	arn, err := model.ParseRoleARN(roleARN)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, err := m.c.GetRole(ctx, arn.Name)
	if err != nil {
		return err
	}
	doc, err := trust.Parse(r.TrustPolicy, provider)
	if err != nil {
		return err
	}
	if _, err := doc.Add(subject); err != nil {
		return err
	}
	return m.c.UpdateTrustPolicy(ctx, arn.Name, doc.String())
}

// BenchmarkEnsureConcurrent: 1,000 concurrent "ensure subject" calls over
// 3 roles, 50 ms simulator latency on every IAM call, quota raised so that
// everything fits. Both strategies run in the same invocation, so the
// figures print side by side:
//
//   - strategy=group-commit: trust.Writer (per-role group commit).
//   - strategy=mutex-per-request: the existing service's strategy, one
//     GetRole + UpdateAssumeRolePolicy per request under one process-wide
//     lock.
//
// Nothing is scaled or extrapolated: the baseline really makes its 2,000
// calls of 50 ms each, one after the other, so one iteration takes about
// 100 s (the reason to run it with -benchtime=1x; with the default
// benchtime it also stops after one iteration). Metrics per iteration:
// wall-ms (first call to last return), writes (UpdateAssumeRolePolicy
// calls), getroles (GetRole calls).
func BenchmarkEnsureConcurrent(b *testing.B) {
	b.Run("strategy=group-commit", func(b *testing.B) {
		benchmarkEnsure(b, func(c *iam.Client) ensurer {
			w := trust.NewWriter(c, trust.WriterOptions{OIDCProvider: provider})
			return func(ctx context.Context, roleARN, subject string) error { return w.Ensure(ctx, roleARN, subject) }
		})
	})
	b.Run("strategy=mutex-per-request", func(b *testing.B) {
		benchmarkEnsure(b, func(c *iam.Client) ensurer { return (&mutexBaseline{c: c}).ensure })
	})
}

func benchmarkEnsure(b *testing.B, strategy func(*iam.Client) ensurer) {
	const (
		requests = 1000
		roles    = 3
		latency  = 50 * time.Millisecond
	)
	e := newEnv(b)
	e.sim.SetQuota(acct, 1<<20)
	e.sim.SetLatency("", latency)
	var wall time.Duration
	var writes, reads int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		var arns []string
		for r := range roles {
			arns = append(arns, e.role(b, fmt.Sprintf("bench-%d-%d", i, r)))
		}
		ensure := strategy(e.client(b)) // a fresh client: the quota is read again
		e.sim.ResetCalls()
		errs := make(chan error, requests)
		var wg sync.WaitGroup
		b.StartTimer()

		start := time.Now()
		for n := range requests {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- ensure(context.Background(), arns[n%roles], subject(fmt.Sprintf("run-%d", n)))
			}()
		}
		wg.Wait()
		wall += time.Since(start)

		b.StopTimer()
		close(errs)
		for err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		calls := e.sim.Calls()
		writes += calls["UpdateAssumeRolePolicy"]
		reads += calls["GetRole"]
		for r := range roles {
			got := e.subjects(b, fmt.Sprintf("bench-%d-%d", i, r))
			for n := r; n < requests; n += roles {
				if !slices.Contains(got, subject(fmt.Sprintf("run-%d", n))) {
					b.Fatalf("role %d lost run-%d", r, n)
				}
			}
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(wall.Milliseconds())/float64(b.N), "wall-ms")
	b.ReportMetric(float64(writes)/float64(b.N), "writes")
	b.ReportMetric(float64(reads)/float64(b.N), "getroles")
}

// BenchmarkEnsureKnownSubject: Ensure for a subject the role's last round
// left in place, with the cache on (answered without a round) and off (a
// GetRole round per call), from parallel callers on one role of 300
// subjects, the simulator answering at once. Metric: getroles per op.
func BenchmarkEnsureKnownSubject(b *testing.B) {
	for _, ttl := range []time.Duration{time.Hour, 0} {
		b.Run(fmt.Sprintf("cache-ttl=%s", ttl), func(b *testing.B) {
			e := newEnv(b)
			e.sim.SetQuota(acct, 1<<20)
			var subs []string
			for i := range 300 {
				subs = append(subs, subject(fmt.Sprintf("run-%d", i)))
			}
			arn := e.role(b, "known", subs...)
			w := trust.NewWriter(e.client(b), trust.WriterOptions{OIDCProvider: provider, CacheTTL: ttl})
			if err := w.Ensure(context.Background(), arn, subs[0]); err != nil {
				b.Fatal(err)
			}
			e.sim.ResetCalls()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if err := w.Ensure(context.Background(), arn, subs[i%len(subs)]); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(e.sim.Calls()["GetRole"])/float64(b.N), "getroles/op")
		})
	}
}
