package identity

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// sockets lists the unix sockets under dir.
func sockets(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSocket != 0 {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The broker's own temporary directory is not writable (the shipped
// Deployment has a read-only root filesystem): the plugin's socket goes to
// SocketDir instead, and nothing is left there once the plugin is closed.
func TestSocketDirWhenTMPDIRIsNotWritable(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("go-plugin uses TCP on Windows")
	}
	base := t.TempDir()
	dir := filepath.Join(base, "plugins")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// Stands in for a read-only /tmp: nothing can be created there.
	t.Setenv("TMPDIR", filepath.Join(base, "read-only-tmp"))

	p := openT(t, PluginOptions{Name: "testkit", SocketDir: dir})
	if _, err := p.Authenticate(context.Background(), sdk.Credentials{Token: "good"}); err != nil {
		t.Fatal(err)
	}
	if got := sockets(t, dir); len(got) != 1 {
		t.Fatalf("sockets under %s: %v, want the plugin's one", dir, got)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("left in %s after Close: %v", dir, left)
	}

	// Without SocketDir the default is the unwritable TMPDIR: Open says so,
	// naming it, and starts nothing.
	before := len(children(t))
	_, err := Open(context.Background(), PluginOptions{Name: "testkit", Builtins: testBuiltins})
	if err == nil || !errors.Is(err, sdk.ErrInvalidConfig) || !strings.Contains(err.Error(), filepath.Join(base, "read-only-tmp")) ||
		!strings.Contains(err.Error(), "writable directory") {
		t.Fatalf("Open with an unwritable TMPDIR = %v", err)
	}
	if n := len(children(t)); n != before {
		t.Fatalf("a plugin was started (%d children, %d before)", n, before)
	}
}

// A SocketDir that cannot hold the plugin's sockets is refused at Open,
// before any plugin starts, with an error naming it.
func TestSocketDirIsChecked(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("go-plugin uses TCP on Windows")
	}
	base := t.TempDir()
	file := filepath.Join(base, "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	readOnly := filepath.Join(base, "read-only")
	if err := os.Mkdir(readOnly, 0o500); err != nil {
		t.Fatal(err)
	}
	long := filepath.Join(base, strings.Repeat("d", 100))
	if err := os.Mkdir(long, 0o700); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, dir, want string }{
		{"missing", filepath.Join(base, "missing"), "no such file"},
		{"not a directory", file, "not a directory"},
		{"read-only", readOnly, "permission denied"},
		{"too long for a socket path", long, "too long"},
	}
	before := len(children(t))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "read-only" && os.Geteuid() == 0 {
				t.Skip("root writes to a read-only directory")
			}
			p, err := Open(context.Background(), PluginOptions{Name: "testkit", Builtins: testBuiltins, SocketDir: c.dir})
			if err == nil {
				p.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, sdk.ErrInvalidConfig) || !strings.Contains(err.Error(), c.dir) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want invalid config naming %s with %q", err, c.dir, c.want)
			}
		})
	}
	if n := len(children(t)); n != before {
		t.Fatalf("%d plugins were started", n-before)
	}
}

// procEnviron is the environment pid was started with.
func procEnviron(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			env[k] = v
		}
	}
	return env
}

// A plugin process sees only the allow-listed variables, the ones its
// options name and the protocol's own: never the broker's AWS keys.
func TestPluginEnvironmentIsAllowListed(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc/<pid>/environ")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{
		"AWS_ACCESS_KEY_ID":       "AKIAIOSFODNN7EXAMPLE",
		"AWS_SECRET_ACCESS_KEY":   "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		"AWS_SESSION_TOKEN":       "session-token",
		"IRSA_TLS_KEY":            "/etc/irsa/tls/tls.key",
		"KUBERNETES_SERVICE_HOST": "10.0.0.1",
	}
	passed := map[string]string{
		"HTTPS_PROXY":         "http://proxy.example:3128",
		"no_proxy":            "localhost,.svc",
		"SSL_CERT_FILE":       "/etc/ssl/extra.pem",
		"TZ":                  "Europe/Zurich",
		"DOMINO_TEST_API_KEY": "named-by-the-options", // in Env below
	}
	for k, v := range secrets {
		t.Setenv(k, v)
	}
	for k, v := range passed {
		t.Setenv(k, v)
	}
	allowed := []string{"PATH", "HOME", "TMPDIR", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR",
		"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
		"GODEBUG", "GOGC", "GOMAXPROCS", "GOMEMLIMIT", "GOTRACEBACK", "GORACE",
		sdk.LogLevelEnv, sdk.Handshake.MagicCookieKey, "DOMINO_TEST_API_KEY"}

	for _, name := range []string{"testkit", exe} { // a built-in and a plugin given by path
		t.Run(filepath.Base(name), func(t *testing.T) {
			p := openT(t, PluginOptions{Name: name, Env: []string{"DOMINO_TEST_API_KEY"}})
			if _, err := p.Authenticate(context.Background(), sdk.Credentials{Token: "good"}); err != nil {
				t.Fatal(err)
			}
			env := procEnviron(t, p.PID())
			for k := range secrets {
				if v, ok := env[k]; ok {
					t.Errorf("the plugin sees %s=%s", k, v)
				}
			}
			for k, v := range passed {
				if env[k] != v {
					t.Errorf("the plugin sees %s=%q, want %q", k, env[k], v)
				}
			}
			if env["PATH"] != os.Getenv("PATH") || env[sdk.LogLevelEnv] != "warn" {
				t.Errorf("PATH=%q %s=%q", env["PATH"], sdk.LogLevelEnv, env[sdk.LogLevelEnv])
			}
			for k := range env {
				if !slices.Contains(allowed, k) && !strings.HasPrefix(k, "PLUGIN_") {
					t.Errorf("the plugin sees %s, which is neither allow-listed nor named", k)
				}
			}
		})
	}
}
