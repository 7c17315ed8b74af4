package identity

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/irsa-broker/irsa-broker/plugins/builtin"
	"github.com/irsa-broker/irsa-broker/plugins/builtin/builtintest"
	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// The test binary doubles as the broker: started by the host as
// `<test binary> plugin NAME` (what `irsa-broker plugin NAME` does), it serves
// a built-in or a test provider through the real protocol, so these tests
// need no separate build. Started by its path with no arguments, as a
// third-party plugin is, it serves testkit. With hostEnv set it plays a
// broker that opens a plugin and waits to be killed.
const hostEnv = "IRSA_IDENTITY_TEST_HOST"

func TestMain(m *testing.M) {
	if name, ok := builtintest.PluginName(); ok {
		servePlugin(name)
		os.Exit(0)
	}
	if len(os.Args) == 1 && os.Getenv(sdk.Handshake.MagicCookieKey) != "" { // started by path: a third-party plugin
		servePlugin("testkit")
		os.Exit(0)
	}
	if os.Getenv(hostEnv) != "" {
		runTestHost()
		os.Exit(0)
	}
	// Plugin children built with -race would otherwise sleep 1s at exit.
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	os.Exit(m.Run())
}

func servePlugin(name string) {
	if name == "testkit" {
		sdk.ServeWith(&testkit{}, sdk.ServeOptions{Logger: sdk.NewLogger("testkit"), ParentCheck: 100 * time.Millisecond})
		return
	}
	if name == "future" { // a plugin of a future SDK that speaks protocol version 2 only
		hs := sdk.Handshake
		hs.ProtocolVersion = 2
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig:  hs,
			VersionedPlugins: map[int]plugin.PluginSet{2: sdk.VersionedPlugins(&testkit{})[sdk.ProtocolVersion]},
			GRPCServer:       plugin.DefaultGRPCServer,
			Logger:           sdk.NewLogger("future"),
		})
		return
	}
	if err := builtin.Serve(name); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// runTestHost opens the testkit plugin, prints its pid and blocks until killed.
func runTestHost() {
	p, err := Open(context.Background(), PluginOptions{Name: "testkit", Builtins: testBuiltins})
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Printf("pid=%d\n", p.PID())
	select {}
}

var testBuiltins = []string{"domino", "oidc", "static", "testkit", "future"}

// testkit is a provider with misbehaviours on demand: the token "crash" ends
// the process, "hang" never answers, "good" is alice, anything else is rejected.
type testkit struct{}

func (testkit) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "testkit", Version: "1"}, nil
}

func (testkit) Configure(_ context.Context, raw []byte) error {
	if strings.TrimSpace(string(raw)) == "reject" {
		return fmt.Errorf("%w: testkit: mode: reject", sdk.ErrInvalidConfig)
	}
	return nil
}

func (testkit) Authenticate(_ context.Context, c sdk.Credentials) (sdk.Identity, error) {
	switch c.Token {
	case "crash":
		os.Exit(3)
	case "hang":
		select {}
	case "good":
		return sdk.Identity{ID: "u1", Username: "alice", Organizations: []string{"acme"}}, nil
	}
	return sdk.Identity{}, fmt.Errorf("%w: unknown token", sdk.ErrUnauthenticated)
}

// children lists the live (non-zombie) child processes of this process.
func children(t testing.TB) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, state, ok := procStat(pid); ok && ppid == os.Getpid() && state != "Z" {
			out = append(out, pid)
		}
	}
	return out
}

// alive reports whether pid is a live (non-zombie) process.
func alive(pid int) bool {
	_, state, ok := procStat(pid)
	return ok && state != "Z"
}

func procStat(pid int) (ppid int, state string, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", false
	}
	// pid (comm) state ppid ...; comm may contain spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, "", false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0, "", false
	}
	ppid, err = strconv.Atoi(f[1])
	return ppid, f[0], err == nil
}

func readPID(t *testing.T, r *bufio.Reader) int {
	t.Helper()
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("reading the host's output: %v", err)
	}
	line = strings.TrimSpace(line)
	pid, err := strconv.Atoi(strings.TrimPrefix(line, "pid="))
	if err != nil || pid <= 0 {
		t.Fatalf("host said %q", line)
	}
	return pid
}
