package identity

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/irsa-broker/irsa-broker/core/metrics"
	"github.com/irsa-broker/irsa-broker/internal/polltest"
	"github.com/irsa-broker/irsa-broker/plugins/sdk"
	"github.com/irsa-broker/irsa-broker/plugins/sdk/sdktest"
)

const staticUsers = `users:
  - {token: alice-token, id: u1, username: alice, organizations: [acme, beta]}
  - {token: root-token, id: u0, username: root, admin: true, organizations: []}
`

func openT(t *testing.T, o PluginOptions) *Plugin {
	t.Helper()
	if o.Builtins == nil {
		o.Builtins = testBuiltins
	}
	if o.Logger == nil {
		o.Logger = hclog.New(&hclog.LoggerOptions{Output: testWriter{t}, Level: hclog.Warn})
	}
	p, err := Open(context.Background(), o)
	if err != nil {
		t.Fatalf("Open(%s) = %v", o.Name, err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

type testWriter struct{ t *testing.T }

// logSink passes log lines to t.Log and keeps them for contains.
type logSink struct {
	t   *testing.T
	mu  sync.Mutex
	buf strings.Builder
}

func (s *logSink) Write(b []byte) (int, error) {
	s.t.Log(strings.TrimSpace(string(b)))
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(b)
}

func (s *logSink) contains(sub string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Contains(s.buf.String(), sub)
}

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// The static built-in passes the conformance suite through the real
// protocol: a child process, the handshake, mTLS and gRPC.
func TestStaticThroughTheHost(t *testing.T) {
	h := sdktest.Harness{
		Config: []byte(staticUsers),
		InvalidConfigs: map[string][]byte{
			"empty":      []byte(""),
			"no id":      []byte("users:\n  - {token: a, username: x}\n"),
			"bad sha256": []byte("users:\n  - {token_sha256: zz, id: u, username: x}\n"),
		},
		Valid: []sdktest.Case{
			{Name: "alice", Creds: sdk.Credentials{Token: "alice-token", Header: sdk.HeaderAuthorization},
				Want: sdk.Identity{ID: "u1", Username: "alice", Organizations: []string{"acme", "beta"}}},
			{Name: "root", Creds: sdk.Credentials{Token: "root-token", Header: sdk.HeaderDominoAPIKey},
				Want: sdk.Identity{ID: "u0", Username: "root", Admin: true}},
		},
	}
	sdktest.RunProvider(t, h, func(t *testing.T) sdk.Provider {
		return openT(t, PluginOptions{Name: "static", Config: []byte(staticUsers)})
	})
}

func TestOpenErrors(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	notPlugin := filepath.Join(t.TempDir(), "not-a-plugin")
	if err := os.WriteFile(notPlugin, []byte("#!/bin/sh\necho hello\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	before := len(children(t))
	cases := []struct {
		name    string
		o       PluginOptions
		invalid bool // errors.Is(err, sdk.ErrInvalidConfig)
		want    string
	}{
		{"no name", PluginOptions{}, true, "required"},
		{"unknown built-in", PluginOptions{Name: "ldap"}, true, "not built in"},
		{"missing binary", PluginOptions{Name: "/nonexistent/plugin"}, true, "no such file"},
		{"directory", PluginOptions{Name: t.TempDir()}, true, "not an executable"},
		{"bad pin", PluginOptions{Name: exe, SHA256: "abc"}, true, "64 hex"},
		{"wrong pin", PluginOptions{Name: exe, SHA256: strings.Repeat("0", 64)}, true, "pinned"},
		{"rejected config", PluginOptions{Name: "testkit", Config: []byte("reject")}, true, "mode: reject"},
		{"invalid static config", PluginOptions{Name: "static", Config: []byte("users: [")}, true, "static"},
		{"not a plugin", PluginOptions{Name: notPlugin, StartTimeout: 5 * time.Second}, false, "not-a-plugin"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.o.Builtins == nil {
				c.o.Builtins = testBuiltins
			}
			p, err := Open(context.Background(), c.o)
			if err == nil {
				p.Close()
				t.Fatal("Open succeeded")
			}
			if errors.Is(err, sdk.ErrInvalidConfig) != c.invalid || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v (invalid config: %v), want %q", err, errors.Is(err, sdk.ErrInvalidConfig), c.want)
			}
		})
	}
	if n := len(children(t)); n != before {
		t.Fatalf("failed Opens left %d child processes behind", n-before)
	}
}

func TestCrashedPluginRestarts(t *testing.T) {
	m := metrics.New()
	p := openT(t, PluginOptions{Name: "testkit", Metrics: m, CallTimeout: time.Second,
		HealthInterval: time.Hour, MinBackoff: 300 * time.Millisecond, MaxBackoff: time.Second})
	ctx := context.Background()
	good := sdk.Credentials{Token: "good", Header: sdk.HeaderAuthorization}
	if _, err := p.Authenticate(ctx, good); err != nil {
		t.Fatal(err)
	}
	first := p.PID()
	if first == 0 || !alive(first) {
		t.Fatalf("pid %d", first)
	}
	if _, err := p.Authenticate(ctx, sdk.Credentials{Token: "crash"}); !errors.Is(err, sdk.ErrUnavailable) {
		t.Fatalf("call that crashed the plugin = %v", err)
	}
	// While it is down, calls fail at once with a retry hint: answered
	// without calling the plugin (outcome "down"), so no call can hang.
	var down *UnavailableError
	polltest.Until(t, "the plugin to be marked down", func() bool {
		_, err := p.Authenticate(ctx, good)
		return errors.As(err, &down)
	})
	if n := samples(p.calls.WithLabelValues("authenticate", "down")); n == 0 {
		t.Fatal("no call was answered as down")
	}
	if !errors.Is(down, sdk.ErrUnavailable) || down.RetryAfter > time.Second {
		t.Fatalf("down error = %v (retry after %s)", down, down.RetryAfter)
	}
	if got := value(p.up); got != 0 {
		t.Fatalf("irsa_identity_plugin_up = %v while down", got)
	}
	polltest.Until(t, "the restarted plugin to answer", func() bool {
		_, err := p.Authenticate(ctx, good)
		return err == nil
	})
	if second := p.PID(); second == first || alive(first) {
		t.Fatalf("pid %d -> %d (old alive: %v)", first, second, alive(first))
	}
	if got := value(p.restarts); got != 1 {
		t.Fatalf("restarts = %v", got)
	}
	if got := value(p.up); got != 1 {
		t.Fatalf("up = %v", got)
	}
}

func TestHungPluginTimesOutAndIsReplaced(t *testing.T) {
	p := openT(t, PluginOptions{Name: "testkit", CallTimeout: 300 * time.Millisecond,
		HealthInterval: 100 * time.Millisecond, MinBackoff: 50 * time.Millisecond})
	ctx := context.Background()
	// One call that never answers: the per-call timeout ends it (ctx has no
	// deadline, so DeadlineExceeded can only be CallTimeout's).
	if _, err := p.Authenticate(ctx, sdk.Credentials{Token: "hang"}); !errors.Is(err, sdk.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("hanging call = %v", err)
	}
	// A whole process that stops answering is killed and replaced.
	first := p.PID()
	if err := syscall.Kill(first, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	polltest.Until(t, "a fresh plugin", func() bool {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err := p.Authenticate(ctx, sdk.Credentials{Token: "good"})
		return err == nil && p.PID() != first
	})
	polltest.Until(t, "the stopped plugin to be gone", func() bool { return !alive(first) })
}

// No plugin process outlives its broker: not after Close, and not after the
// broker is killed without a chance to clean up.
func TestNoChildOutlivesTheBroker(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts processes in /proc")
	}
	before := children(t)
	var opened []*Plugin
	for _, name := range []string{"static", "testkit", "testkit"} {
		p, err := Open(context.Background(), PluginOptions{Name: name, Builtins: testBuiltins, Config: []byte(staticUsers)})
		if err != nil {
			t.Fatal(err)
		}
		opened = append(opened, p)
	}
	if n := len(children(t)) - len(before); n != 3 {
		t.Fatalf("%d children after opening 3 plugins", n)
	}
	for _, p := range opened {
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(children(t)) - len(before); n != 0 {
		t.Fatalf("%d children left after Close", n)
	}
	if _, err := opened[0].Authenticate(context.Background(), sdk.Credentials{Token: "alice-token"}); !errors.Is(err, sdk.ErrUnavailable) {
		t.Fatalf("closed plugin answered %v", err)
	}

	// A broker killed with SIGKILL.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	host := exec.Command(exe)
	host.Env = append(os.Environ(), hostEnv+"=1")
	out, err := host.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	pid := readPID(t, bufio.NewReader(out))
	if !alive(pid) {
		t.Fatalf("plugin %d is not running", pid)
	}
	if ppid, _, _ := procStat(pid); ppid != host.Process.Pid {
		t.Fatalf("plugin %d has parent %d, not the host %d", pid, ppid, host.Process.Pid)
	}
	_ = host.Process.Kill()
	_ = host.Wait()
	polltest.Until(t, "the orphaned plugin to exit", func() bool { return !alive(pid) })
}

func TestExamplePluginThroughTheHost(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "identity-plugin")
	// The example is a module of its own (examples/outoftree_test.go also
	// builds it outside the repository).
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = filepath.Join("..", "..", "examples", "identity-plugin")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	// By path, pinned, with no configuration at all.
	p := openT(t, PluginOptions{Name: bin, SHA256: hex.EncodeToString(sum[:])})
	if info := p.Describe(); info.Name != "example" {
		t.Fatalf("info = %+v", info)
	}
	a := New(p, Options{})
	id, err := a.Authenticate(context.Background(), sdk.Credentials{Token: "demo-token", Header: sdk.HeaderAuthorization})
	if err != nil || id.Username != "demo" || len(id.Organizations) != 1 || id.Organizations[0] != "demo-org" {
		t.Fatalf("demo = %+v, %v", id, err)
	}
	if _, err := a.Authenticate(context.Background(), sdk.Credentials{Token: "nope"}); !errors.Is(err, sdk.ErrUnauthenticated) {
		t.Fatalf("bad token = %v", err)
	}
	if err := a.Healthy(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestConfigPathIsReloaded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.yaml")
	if err := os.WriteFile(path, []byte(staticUsers), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &logSink{t: t}
	p := openT(t, PluginOptions{Name: "static", ConfigPath: path, HealthInterval: 50 * time.Millisecond,
		Logger: hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Warn})})
	ctx := context.Background()
	if _, err := p.Authenticate(ctx, sdk.Credentials{Token: "alice-token"}); err != nil {
		t.Fatal(err)
	}
	// A broken edit is rejected; the running users stay.
	if err := os.WriteFile(path, []byte("users: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	polltest.Until(t, "the broken edit to be rejected", func() bool { return logs.contains("identity config rejected") })
	if _, err := p.Authenticate(ctx, sdk.Credentials{Token: "alice-token"}); err != nil {
		t.Fatalf("after a broken edit: %v", err)
	}
	if err := os.WriteFile(path, []byte("users:\n  - {token: carol-token, id: u3, username: carol, organizations: [x]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	polltest.Until(t, "the new users", func() bool {
		id, err := p.Authenticate(ctx, sdk.Credentials{Token: "carol-token"})
		return err == nil && id.Username == "carol"
	})
	if _, err := p.Authenticate(ctx, sdk.Credentials{Token: "alice-token"}); !errors.Is(err, sdk.ErrUnauthenticated) {
		t.Fatalf("removed user = %v", err)
	}
}

// The Domino built-in through the real protocol, against a stand-in API.
func TestDominoThroughTheHost(t *testing.T) {
	domino := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Domino-Api-Key") != "key-1" {
			io.WriteString(w, `{"isAnonymous":true,"canonicalId":"anonymous"}`)
			return
		}
		switch r.URL.Path {
		case "/v4/auth/principal":
			io.WriteString(w, `{"canonicalId":"6441","canonicalName":"alice","isAdmin":false,"isAnonymous":false}`)
		case "/v4/organizations/self":
			io.WriteString(w, `[{"name":"irsa-iamrole-list-bucket"}]`)
		}
	}))
	defer domino.Close()
	m := metrics.New()
	p := openT(t, PluginOptions{Name: "domino", Config: []byte("host: " + domino.URL + "\n")})
	a := New(p, Options{Metrics: m})
	ctx := context.Background()
	id, err := a.Authenticate(ctx, sdk.Credentials{Token: "key-1", Header: sdk.HeaderDominoAPIKey})
	if err != nil || id.ID != "6441" || len(id.Organizations) != 1 {
		t.Fatalf("%+v %v", id, err)
	}
	if _, err := a.Authenticate(ctx, sdk.Credentials{Token: "key-2", Header: sdk.HeaderDominoAPIKey}); !errors.Is(err, sdk.ErrUnauthenticated) {
		t.Fatalf("anonymous key: %v", err)
	}
	domino.Close()
	if _, err := a.Authenticate(ctx, sdk.Credentials{Token: "key-3", Header: sdk.HeaderDominoAPIKey}); !errors.Is(err, sdk.ErrUnavailable) {
		t.Fatalf("Domino down: %v", err)
	}
	// The legacy counters count lookups and failures.
	if q, f := value(m.QueryPrincipal), value(m.FailedPrincipal); q != 3 || f != 2 {
		t.Fatalf("irsa_query_user_principal_total = %v, irsa_failed_query_user_principal_total = %v", q, f)
	}
}
