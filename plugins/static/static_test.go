package static

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

func TestAuthenticate(t *testing.T) {
	sum := sha256.Sum256([]byte("bob-secret"))
	cfg := `users:
  - token: alice-token
    id: u1
    username: alice
    organizations: [a, b]
  - token_sha256: ` + hex.EncodeToString(sum[:]) + `
    id: u2
    username: bob
    admin: true
    organizations: []
`
	p := New()
	if err := p.Configure(context.Background(), []byte(cfg)); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	id, err := p.Authenticate(ctx, sdk.Credentials{Token: "alice-token", Header: sdk.HeaderAuthorization})
	if err != nil || id.ID != "u1" || id.Username != "alice" || len(id.Organizations) != 2 || id.Admin {
		t.Fatalf("alice: %+v %v", id, err)
	}
	id, err = p.Authenticate(ctx, sdk.Credentials{Token: "bob-secret", Header: sdk.HeaderDominoAPIKey})
	if err != nil || id.Username != "bob" || !id.Admin {
		t.Fatalf("bob by hash: %+v %v", id, err)
	}
	for _, tok := range []string{"", "nope", "alice-token ", strings.Repeat("x", 10000)} {
		_, err := p.Authenticate(ctx, sdk.Credentials{Token: tok})
		if !errors.Is(err, sdk.ErrUnauthenticated) {
			t.Errorf("token %.10q: err = %v", tok, err)
		}
		if tok != "" && strings.Contains(err.Error(), tok) {
			t.Errorf("error leaks the token: %v", err)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	cases := map[string]string{
		"no token":      "users:\n  - id: u\n    username: x\n",
		"both":          "users:\n  - token: a\n    token_sha256: " + strings.Repeat("0", 64) + "\n    id: u\n    username: x\n",
		"bad hash":      "users:\n  - token_sha256: zz\n    id: u\n    username: x\n",
		"no id":         "users:\n  - token: a\n    username: x\n",
		"duplicate":     "users:\n  - token: a\n    id: u\n    username: x\n  - token: a\n    id: v\n    username: y\n",
		"unknown field": "users:\n  - token: a\n    id: u\n    username: x\n    role: admin\n",
		"not yaml":      "users: [",
	}
	for name, cfg := range cases {
		t.Run(name, func(t *testing.T) {
			p := New()
			err := p.Configure(context.Background(), []byte(cfg))
			if !errors.Is(err, sdk.ErrInvalidConfig) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestReloadKeepsLastGood(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.yaml")
	os.WriteFile(path, []byte("users:\n  - token: a\n    id: u\n    username: x\n"), 0o600)
	p := New()
	if err := p.Load(path); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, []byte("users: ["), 0o600)
	if err := p.Reload(); err == nil {
		t.Fatal("broken file accepted")
	}
	if _, err := p.Authenticate(context.Background(), sdk.Credentials{Token: "a"}); err != nil {
		t.Fatalf("last good users lost: %v", err)
	}
	os.WriteFile(path, []byte("users:\n  - token: b\n    id: u\n    username: x\n"), 0o600)
	if err := p.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Authenticate(context.Background(), sdk.Credentials{Token: "a"}); err == nil {
		t.Fatal("old token still accepted after reload")
	}
}
