package sdk_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/irsa-broker/irsa-broker/plugins/sdk"
	"github.com/irsa-broker/irsa-broker/plugins/sdk/sdktest"
)

// mapProvider is the smallest honest provider: tokens to identities from its config.
type mapProvider struct {
	users map[string]sdk.Identity
	panic string // a token that makes Authenticate panic
	leaky bool   // puts the token into its errors, as a careless provider might
}

func (p *mapProvider) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "map", Version: "0.1.0", Capabilities: []string{"bearer"}}, nil
}

func (p *mapProvider) Configure(_ context.Context, raw []byte) error {
	var cfg struct {
		Users map[string]sdk.Identity `json:"users"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return fmt.Errorf("%w: %v", sdk.ErrInvalidConfig, err)
	}
	if len(cfg.Users) == 0 {
		return fmt.Errorf("%w: users: at least one is required", sdk.ErrInvalidConfig)
	}
	p.users = cfg.Users
	return nil
}

func (p *mapProvider) Authenticate(ctx context.Context, c sdk.Credentials) (sdk.Identity, error) {
	if err := ctx.Err(); err != nil {
		return sdk.Identity{}, err
	}
	if p.panic != "" && c.Token == p.panic {
		panic("boom")
	}
	id, ok := p.users[c.Token]
	if !ok {
		if p.leaky {
			return sdk.Identity{}, fmt.Errorf("%w: no user has token %q", sdk.ErrUnauthenticated, c.Token)
		}
		return sdk.Identity{}, fmt.Errorf("%w: unknown token", sdk.ErrUnauthenticated)
	}
	id.Organizations = append([]string{}, id.Organizations...)
	id.Groups = append([]string(nil), id.Groups...)
	id.Attributes = maps.Clone(id.Attributes)
	return id, nil
}

const mapConfig = `{"users": {
  "tok-alice": {"id": "u1", "username": "alice", "organizations": ["acme", "beta"], "attributes": {"team": "ds"}, "expiry": "2030-01-02T03:04:05.000000006Z"},
  "tok-bob": {"id": "u2", "username": "bob", "email": "bob@example.com", "organizations": [], "admin": true, "groups": ["g1"]}
}}`

func TestConformance(t *testing.T) {
	sdktest.Run(t, sdktest.Harness{
		New:    func(*testing.T) sdk.Provider { return &mapProvider{} },
		Config: []byte(mapConfig),
		InvalidConfigs: map[string][]byte{
			"empty":   nil,
			"unknown": []byte(`{"users": {}, "extra": 1}`),
		},
		Valid: []sdktest.Case{
			{Name: "alice", Creds: sdk.Credentials{Token: "tok-alice", Header: sdk.HeaderAuthorization},
				Want: sdk.Identity{ID: "u1", Username: "alice", Organizations: []string{"beta", "acme"}, Attributes: map[string]string{"team": "ds"}}},
			{Name: "bob", Creds: sdk.Credentials{Token: "tok-bob", Header: sdk.HeaderDominoAPIKey},
				Want: sdk.Identity{ID: "u2", Username: "bob", Email: "bob@example.com", Admin: true, Groups: []string{"g1"}}},
		},
		Invalid: []sdktest.Case{{Name: "alice's token, other case", Creds: sdk.Credentials{Token: "TOK-ALICE"}}},
	})
}

// TestConformanceCatchesLeaks proves the suite fails a provider whose errors
// carry the credential, in-process (over gRPC the shim scrubs it).
func TestConformanceCatchesLeaks(t *testing.T) {
	p := &mapProvider{leaky: true}
	if err := p.Configure(context.Background(), []byte(mapConfig)); err != nil {
		t.Fatal(err)
	}
	_, err := p.Authenticate(context.Background(), sdk.Credentials{Token: "tok-mallory"})
	if !strings.Contains(err.Error(), "tok-mallory") {
		t.Fatal("the fake is not leaky")
	}
	remote := sdktest.OverGRPC(t, p)
	_, err = remote.Authenticate(context.Background(), sdk.Credentials{Token: "tok-mallory"})
	if !errors.Is(err, sdk.ErrUnauthenticated) || strings.Contains(err.Error(), "tok-mallory") {
		t.Fatalf("over gRPC: %v", err)
	}
}

func TestOverGRPC(t *testing.T) {
	ctx := context.Background()
	p := &mapProvider{panic: "tok-panic"}
	remote := sdktest.OverGRPC(t, p)
	if err := remote.Configure(ctx, []byte(`{"users": 3}`)); !errors.Is(err, sdk.ErrInvalidConfig) {
		t.Fatalf("Configure(bad) = %v", err)
	}
	if err := remote.Configure(ctx, []byte(mapConfig)); err != nil {
		t.Fatal(err)
	}
	id, err := remote.Authenticate(ctx, sdk.Credentials{Token: "tok-alice", Header: sdk.HeaderAuthorization})
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	if !id.Expiry.Equal(want) || id.Attributes["team"] != "ds" {
		t.Fatalf("identity = %+v", id)
	}
	id, err = remote.Authenticate(ctx, sdk.Credentials{Token: "tok-bob"})
	if err != nil || !id.Expiry.IsZero() || id.Organizations == nil {
		t.Fatalf("bob = %+v, %v (zero expiry stays zero, organizations never nil)", id, err)
	}
	// A panicking provider answers with an internal error and keeps serving.
	_, err = remote.Authenticate(ctx, sdk.Credentials{Token: "tok-panic"})
	if err == nil || errors.Is(err, sdk.ErrUnauthenticated) || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("panic = %v", err)
	}
	var re *sdk.RemoteError
	if !errors.As(err, &re) {
		t.Fatalf("%T is not a RemoteError", err)
	}
	if _, err := remote.Authenticate(ctx, sdk.Credentials{Token: "tok-alice"}); err != nil {
		t.Fatalf("after a panic: %v", err)
	}
	// The caller's deadline crosses the wire.
	dctx, cancel := context.WithTimeout(ctx, time.Nanosecond)
	defer cancel()
	<-dctx.Done() // expired, not merely short
	if _, err := remote.Authenticate(dctx, sdk.Credentials{Token: "tok-alice"}); !errors.Is(err, sdk.ErrUnavailable) {
		t.Fatalf("expired deadline = %v", err)
	}
}

func TestCredentialsString(t *testing.T) {
	c := sdk.Credentials{Token: "very-secret", Header: sdk.HeaderAuthorization}
	for _, s := range []string{c.String(), fmt.Sprint(c), fmt.Sprintf("%v %+v", c, c)} {
		if strings.Contains(s, "very-secret") {
			t.Fatalf("%q", s)
		}
	}
}
