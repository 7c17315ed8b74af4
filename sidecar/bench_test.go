package sidecar

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/irsa-broker/irsa-broker/internal/devstack"
)

// The benchmarks run the real binary (CGO_ENABLED=0, as shipped) against the dev
// stack: time from process start to /readyz 200, and resident memory after 100
// refreshes.

var (
	buildOnce sync.Once
	binPath   string
	binErr    error
	binDir    string
)

func sidecarBinary(b *testing.B) string {
	b.Helper()
	buildOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "irsa-sidecar-bench-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "irsa-sidecar")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", binPath, "github.com/irsa-broker/irsa-broker/cmd/irsa-sidecar")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		b.Fatal(binErr)
	}
	return binPath
}

// proc is a running sidecar process.
type proc struct {
	cmd  *exec.Cmd
	base string
}

// startProc starts the binary for a pod and returns once it printed its address.
func startProc(b *testing.B, bin string, cfg Config) *proc {
	b.Helper()
	cmd := exec.Command(bin,
		"--addr", "127.0.0.1:0",
		"--broker-url", cfg.BrokerEndpoint,
		"--api-proxy", cfg.APIProxy,
		"--pod-info", cfg.PodInfoPath,
		"--config-file", cfg.ConfigFile,
		"--token-file", cfg.TokenFile,
		"--sts-endpoint", cfg.STSEndpoint,
		"--region", cfg.Region,
		"--verify-deadline", "30s",
		"--log-level", "info")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	p := &proc{cmd: cmd}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() {
			var line struct {
				Msg  string `json:"@message"`
				Addr string `json:"addr"`
			}
			if !sent && json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "listening" {
				addr <- line.Addr
				sent = true
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	select {
	case a := <-addr:
		p.base = "http://" + a
	case <-time.After(10 * time.Second):
		b.Fatal("sidecar did not report its address")
	}
	return p
}

// pollReady polls /readyz until 200. It measures as well as waits: its
// 2 ms interval is the resolution of ms-to-ready, finer than polltest's, so
// it keeps a loop of its own.
func pollReady(b *testing.B, base string, timeout time.Duration) {
	b.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if resp, err := client.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	status := ""
	if resp, err := client.Get(base + "/status"); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		status = string(body)
	}
	b.Fatalf("%s not ready within %v; status: %s", base, timeout, status)
}

// stackPool hands out a dev stack, replacing it every perStack pods: each new
// run adds a subject to the proxy roles' trust policies, whose size IAM caps.
type stackPool struct {
	b        *testing.B
	lat      time.Duration
	perStack int
	used     int
	st       *devstack.Stack
	stop     func(func(string, ...any))
}

func (p *stackPool) get() *devstack.Stack {
	if p.st == nil || p.used == p.perStack {
		p.close()
		st, stop, err := startStack(devstack.Options{SimLatency: p.lat})
		if err != nil {
			p.b.Fatal(err)
		}
		p.st, p.stop, p.used = st, stop, 0
	}
	p.used++
	return p.st
}

func (p *stackPool) close() {
	if p.stop != nil {
		p.stop(p.b.Logf)
		p.stop, p.st = nil, nil
	}
}

// vmKB reads a Vm* field (kB) of /proc/<pid>/status.
func vmKB(b *testing.B, pid int, field string) float64 {
	b.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatalf("%s not in /proc/%d/status", field, pid)
	return 0
}

// BenchmarkStartToReady measures process start → /readyz 200 (config fetched,
// written and verified with STS) with the simulator answering at once and with
// 50 ms per AWS call. Each iteration is a new pod with a new run id.
func BenchmarkStartToReady(b *testing.B) {
	bin := sidecarBinary(b)
	for _, lat := range []time.Duration{0, 50 * time.Millisecond} {
		b.Run("sim-latency="+lat.String(), func(b *testing.B) {
			pool := &stackPool{b: b, lat: lat, perStack: 8}
			b.Cleanup(pool.close)
			proxy := accessProxy(b, "alice-token")
			var total time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				run := fmt.Sprintf("bench-%d-%d", lat.Milliseconds(), i)
				e, cfg := devPod(b, pool.get(), run, "alice-token")
				cfg.APIProxy = proxy
				b.StartTimer()
				start := time.Now()
				p := startProc(b, bin, cfg)
				pollReady(b, p.base, 30*time.Second)
				el := time.Since(start)
				b.StopTimer()
				total += el
				if fi, err := os.Stat(e.config); err != nil || fi.Size() == 0 {
					b.Fatalf("config not written: %v", err)
				}
				_ = p.cmd.Process.Signal(os.Interrupt)
				b.StartTimer()
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-ready")
		})
	}
}

// BenchmarkMemoryAfterRefreshes measures the binary's resident memory after 100
// synchronous refreshes (broker call, parse, compare, verified content reused).
func BenchmarkMemoryAfterRefreshes(b *testing.B) {
	bin := sidecarBinary(b)
	st := sharedStack(b)
	fi, err := os.Stat(bin)
	if err != nil {
		b.Fatal(err)
	}
	var rss, hwm, perRefresh float64
	for i := 0; i < b.N; i++ {
		_, cfg := devPod(b, st, fmt.Sprintf("mem-%d", i), "alice-token")
		p := startProc(b, bin, cfg)
		pollReady(b, p.base, 30*time.Second)
		client := &http.Client{Timeout: 10 * time.Second}
		start := time.Now()
		for r := 0; r < 100; r++ {
			resp, err := client.Get(p.base + "/refresh")
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Fatalf("refresh %d: HTTP %d", r, resp.StatusCode)
			}
		}
		perRefresh = float64(time.Since(start).Microseconds()) / 100 / 1000
		rss = vmKB(b, p.cmd.Process.Pid, "VmRSS") / 1024
		hwm = vmKB(b, p.cmd.Process.Pid, "VmHWM") / 1024
	}
	b.ReportMetric(rss, "MB-RSS")
	b.ReportMetric(hwm, "MB-peak-RSS")
	b.ReportMetric(perRefresh, "ms/refresh")
	b.ReportMetric(float64(fi.Size())/(1<<20), "MB-binary")
}
