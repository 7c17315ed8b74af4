package static

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/irsa-broker/irsa-broker/internal/polltest"
	"github.com/irsa-broker/irsa-broker/internal/syncbuf"
	"github.com/irsa-broker/irsa-broker/plugins/sdk"
	"github.com/irsa-broker/irsa-broker/plugins/sdk/sdktest"
)

func TestConformance(t *testing.T) {
	sum := sha256.Sum256([]byte("bob-secret"))
	sdktest.Run(t, sdktest.Harness{
		New: func(t *testing.T) sdk.Provider {
			p := New()
			t.Cleanup(func() { p.Close() })
			return p
		},
		Config: []byte(`users:
  - {token: alice-token, id: u1, username: alice, organizations: [a, b], attributes: {team: ds}}
  - {token_sha256: ` + hex.EncodeToString(sum[:]) + `, id: u2, username: bob, admin: true, organizations: []}
`),
		InvalidConfigs: map[string][]byte{
			"empty":        nil,
			"both sources": []byte("users_file: /x\nusers: []\n"),
			"missing file": []byte("users_file: /nonexistent/users.yaml\n"),
			"no username":  []byte("users:\n  - {token: a, id: u}\n"),
		},
		Valid: []sdktest.Case{
			{Name: "alice", Creds: sdk.Credentials{Token: "alice-token", Header: sdk.HeaderAuthorization},
				Want: sdk.Identity{ID: "u1", Username: "alice", Organizations: []string{"a", "b"}, Attributes: map[string]string{"team": "ds"}}},
			{Name: "bob by hash", Creds: sdk.Credentials{Token: "bob-secret", Header: sdk.HeaderDominoAPIKey},
				Want: sdk.Identity{ID: "u2", Username: "bob", Admin: true}},
		},
	})
}

func accepts(p *Provider, token string) bool {
	_, err := p.Authenticate(context.Background(), sdk.Credentials{Token: token})
	return err == nil
}

// The users file is reloaded when it changes: edited in place, replaced by a
// rename, or swapped the way a Kubernetes ConfigMap volume swaps ..data.
func TestReloadOnChange(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "users.yaml")
	write := func(p, token string) {
		t.Helper()
		if err := os.WriteFile(p, []byte("users:\n  - {token: "+token+", id: u, username: x}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(path, "one")
	logs := &syncbuf.Buffer{}
	p := New(WithLogger(hclog.New(&hclog.LoggerOptions{Output: logs})))
	defer p.Close()
	if err := p.Configure(context.Background(), []byte("users_file: "+path)); err != nil {
		t.Fatal(err)
	}
	if !accepts(p, "one") {
		t.Fatal("initial users")
	}
	write(path, "two")
	polltest.Until(t, "an in-place edit", func() bool { return accepts(p, "two") && !accepts(p, "one") })

	tmp := filepath.Join(dir, ".users.tmp")
	write(tmp, "three")
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	polltest.Until(t, "a rename over the file", func() bool { return accepts(p, "three") })

	// A broken file is ignored; the last good users stay.
	if err := os.WriteFile(path, []byte("users: ["), 0o600); err != nil {
		t.Fatal(err)
	}
	polltest.Until(t, "the broken edit to be refused", func() bool { return logs.Count("users file not reloaded") > 0 })
	if !accepts(p, "three") {
		t.Fatal("a broken edit dropped the users")
	}

	// With watch: false nothing is reloaded: q runs no watch, and p, which
	// watches the same file, sees the edit that q ignores.
	write(path, "four")
	polltest.Until(t, "p to reload four", func() bool { return accepts(p, "four") })
	q := New()
	defer q.Close()
	if err := q.Configure(context.Background(), []byte("users_file: "+path+"\nwatch: false\n")); err != nil {
		t.Fatal(err)
	}
	if q.watching() {
		t.Fatal("watch: false started a watch")
	}
	write(path, "five")
	polltest.Until(t, "p to reload five", func() bool { return accepts(p, "five") })
	if !accepts(q, "four") || accepts(q, "five") {
		t.Fatal("watch: false still reloads")
	}
}

func TestConfigMapSwap(t *testing.T) {
	// <dir>/users.yaml -> ..data/users.yaml, ..data -> ..2024_01 (what kubelet does).
	dir := t.TempDir()
	mk := func(name, token string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(dir, name), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "users.yaml"), []byte("users:\n  - {token: "+token+", id: u, username: x}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mk("..2024_01", "old")
	if err := os.Symlink("..2024_01", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/users.yaml", filepath.Join(dir, "users.yaml")); err != nil {
		t.Fatal(err)
	}
	p := New()
	defer p.Close()
	if err := p.Configure(context.Background(), []byte("users_file: "+filepath.Join(dir, "users.yaml"))); err != nil {
		t.Fatal(err)
	}
	mk("..2024_02", "new")
	if err := os.Symlink("..2024_02", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	polltest.Until(t, "the swapped ConfigMap", func() bool { return accepts(p, "new") && !accepts(p, "old") })
}

func TestWatchInline(t *testing.T) {
	p := New()
	if err := p.Configure(context.Background(), []byte("users: []")); err != nil {
		t.Fatal(err)
	}
	if err := p.Watch(context.Background()); !errors.Is(err, sdk.ErrInvalidConfig) {
		t.Fatalf("Watch with inline users = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("users:\n  - {token: a, id: u, username: x, organizations: [o]}\n"))
	f.Add([]byte("users:\n  - token_sha256: " + hex.EncodeToString(make([]byte, 32)) + "\n    id: u\n    username: x\n"))
	f.Add([]byte("users: ["))
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Parse(b)
		if err != nil {
			return
		}
		// Whatever parses either loads or is rejected as invalid config, never panics.
		if err := New().set(file, ""); err != nil && !errors.Is(err, sdk.ErrInvalidConfig) {
			t.Fatalf("set: %v", err)
		}
	})
}
