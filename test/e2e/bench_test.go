package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	benchNS   = "bench-compute"
	benchPods = 5000
	benchSAs  = 50
	// removalPoll is how often BenchmarkPodDeletionToSubjectRemoval reads
	// the trust policy (from the in-process simulator, so cheaply).
	removalPoll = 2 * time.Millisecond
)

var bench struct {
	once   sync.Once
	err    error
	broker *brokerProc
	pods   []*corev1.Pod // the first benchSAs pods, one per service account
}

// setupBench fills bench-compute with benchPods pods (runs bench-NNNN over
// benchSAs service accounts, so trust policies stay within quota) and
// starts a broker watching it.
func setupBench(b *testing.B) {
	bench.once.Do(func() {
		ctx := context.Background()
		cs, err := env.cp.Clientset(1000, 2000)
		if err != nil {
			bench.err = err
			return
		}
		for i := range benchSAs {
			_, err := cs.CoreV1().ServiceAccounts(benchNS).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-sa-%02d", i)}}, metav1.CreateOptions{})
			if err != nil && !apierrors.IsAlreadyExists(err) {
				bench.err = err
				return
			}
		}
		start := time.Now()
		pods := make([]*corev1.Pod, benchPods)
		var wg sync.WaitGroup
		var mu sync.Mutex
		next := 0
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					mu.Lock()
					i := next
					next++
					mu.Unlock()
					if i >= benchPods || bench.err != nil {
						return
					}
					no := false
					p, err := cs.CoreV1().Pods(benchNS).Create(ctx, &corev1.Pod{
						ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%04d", i), Labels: map[string]string{
							"dominodatalab.com/execution-id": fmt.Sprintf("bench-%04d", i), "dominodatalab.com/starting-user-id": "u-alice"}},
						Spec: corev1.PodSpec{ServiceAccountName: fmt.Sprintf("bench-sa-%02d", i%benchSAs), AutomountServiceAccountToken: &no,
							Containers: []corev1.Container{{Name: "run", Image: "example.invalid/run:1"}}},
					}, metav1.CreateOptions{})
					if err != nil {
						mu.Lock()
						bench.err = err
						mu.Unlock()
						return
					}
					pods[i] = p
				}
			}()
		}
		wg.Wait()
		if bench.err != nil {
			return
		}
		bench.pods = pods[:benchSAs]
		fmt.Printf("bench: created %d pods in %s\n", benchPods, time.Since(start).Round(time.Millisecond))
		bench.broker, bench.err = startBroker(ctx, "bench", "--compute-namespace", benchNS, "--leader-election=false", "--cleanup-interval=0", "--log-level", "info",
			// Every trust round takes the role's Lease (three API calls); keep
			// the client's rate limit from being what is measured.
			"--kube-qps", "1000", "--kube-burst", "2000")
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(p*float64(len(s)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// mapMany sends n map requests from 16 clients for random runs and
// returns their latencies.
func mapMany(b *testing.B, n int, token func(i int) (run, podToken string)) []time.Duration {
	lat := make([]time.Duration, n)
	var wg sync.WaitGroup
	work := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				run, tok := token(i)
				t0 := time.Now()
				code, body := mapRun(b, bench.broker, "alice-token", run, tok)
				lat[i] = time.Since(t0)
				if code != http.StatusOK {
					b.Errorf("map %s: %d %s", run, code, body)
				}
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	return lat
}

// BenchmarkMapLatency: map requests against a broker whose informer cache
// holds 5,000 pods in the compute namespace (one role per request; the
// trust policy already holds the subject after the first rounds).
func BenchmarkMapLatency(b *testing.B) {
	setupBench(b)
	tokens := make([]string, len(bench.pods))
	for i, p := range bench.pods {
		tokens[i] = podToken(b, p)
	}
	b.ResetTimer()
	var plain, bound []time.Duration
	for range b.N {
		plain = append(plain, mapMany(b, 1000, func(int) (string, string) {
			return fmt.Sprintf("bench-%04d", rand.N(benchPods)), ""
		})...)
		bound = append(bound, mapMany(b, 200, func(i int) (string, string) {
			k := i % len(bench.pods)
			return bench.pods[k].Name, tokens[k]
		})...)
	}
	b.ReportMetric(ms(percentile(plain, 0.5)), "p50_ms")
	b.ReportMetric(ms(percentile(plain, 0.99)), "p99_ms")
	b.ReportMetric(ms(percentile(bound, 0.5)), "p50_pod_token_ms")
	b.ReportMetric(ms(percentile(bound, 0.99)), "p99_pod_token_ms")
	b.ReportMetric(float64(benchPods), "cached_pods")
}

// BenchmarkPodDeletionToSubjectRemoval: from deleting a run's only pod to
// its subject leaving the proxy role's trust policy (watch → clean-up →
// trust writer with the role Lease → IAM).
func BenchmarkPodDeletionToSubjectRemoval(b *testing.B) {
	setupBench(b)
	var lat []time.Duration
	for n := range b.N {
		for i := range 10 {
			run := fmt.Sprintf("gone-%d-%d", n, i)
			p := runPod(b, benchNS, run, "u-alice")
			mapSeen(b, bench.broker, "alice-token", run, "")
			sub := subject(benchNS, "run-"+run)
			if !hasSubject(b, 0, sub) {
				b.Fatal("subject not added")
			}
			t0 := time.Now()
			deletePod(b, p)
			// The polling interval is the resolution of the measurement.
			poll(b, removalPoll, sub+" removed after its pod's deletion", func() (bool, error) { return !hasSubject(b, 0, sub), nil })
			lat = append(lat, time.Since(t0))
		}
	}
	b.ReportMetric(ms(percentile(lat, 0.5)), "p50_ms")
	b.ReportMetric(ms(percentile(lat, 1)), "max_ms")
}
