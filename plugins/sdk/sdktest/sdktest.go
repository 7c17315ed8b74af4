package sdktest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// Case is a credential and what the provider must make of it.
type Case struct {
	Name  string
	Creds sdk.Credentials
	// Want is the expected identity for a valid credential. ID, Username,
	// Email, Organizations (order-insensitive), Groups (order-insensitive) and
	// Admin are compared; Attributes only when Want has any.
	Want sdk.Identity
}

// Harness describes one provider to the suite.
type Harness struct {
	// New returns a fresh, unconfigured provider.
	New func(t *testing.T) sdk.Provider
	// Config is a valid configuration under which Valid and Invalid hold.
	Config []byte
	// InvalidConfigs must each be rejected with sdk.ErrInvalidConfig.
	InvalidConfigs map[string][]byte
	// Valid credentials authenticate to Want.
	Valid []Case
	// Invalid credentials are rejected with sdk.ErrUnauthenticated. The suite
	// adds an empty token and garbage of its own.
	Invalid []Case
	// Break, when set, makes the provider's backend fail (a server answering
	// 5xx, say) and returns what repairs it; in between a valid credential
	// must give sdk.ErrUnavailable. The suite repairs before it goes on.
	Break func(t *testing.T) (repair func())
}

// Run runs the suite twice: against the provider itself and through the
// gRPC shims of the SDK (go-plugin's in-memory test connection).
func Run(t *testing.T, h Harness) {
	t.Helper()
	t.Run("in-process", func(t *testing.T) { RunProvider(t, h, h.New) })
	t.Run("grpc", func(t *testing.T) {
		RunProvider(t, h, func(t *testing.T) sdk.Provider { return OverGRPC(t, h.New(t)) })
	})
}

// OverGRPC serves p through the SDK's go-plugin gRPC shims over an in-memory
// connection and returns the host's view of it.
func OverGRPC(t testing.TB, p sdk.Provider) sdk.Provider {
	t.Helper()
	client, _ := plugin.TestPluginGRPCConn(t, false, sdk.VersionedPlugins(p)[sdk.ProtocolVersion])
	t.Cleanup(func() { _ = client.Close() }) // Close shuts the server down too
	raw, err := client.Dispense(sdk.PluginName)
	if err != nil {
		t.Fatalf("dispense: %v", err)
	}
	prov, ok := raw.(sdk.Provider)
	if !ok {
		t.Fatalf("dispensed %T, not an sdk.Provider", raw)
	}
	return prov
}

// RunProvider runs the suite against the providers newProvider returns.
func RunProvider(t *testing.T, h Harness, newProvider func(t *testing.T) sdk.Provider) {
	ctx := context.Background()
	configured := func(t *testing.T) sdk.Provider {
		t.Helper()
		p := newProvider(t)
		if err := p.Configure(ctx, h.Config); err != nil {
			t.Fatalf("Configure(valid config) = %v", err)
		}
		return p
	}

	t.Run("Info", func(t *testing.T) {
		p := newProvider(t)
		info, err := p.Info(ctx)
		if err != nil {
			t.Fatalf("Info = %v", err)
		}
		if info.Name == "" || info.Version == "" {
			t.Errorf("Info = %+v: name and version are required", info)
		}
		again, err := p.Info(ctx)
		if err != nil || !reflect.DeepEqual(info, again) {
			t.Errorf("Info is not stable: %+v then %+v (%v)", info, again, err)
		}
	})

	t.Run("Configure/invalid", func(t *testing.T) {
		if len(h.InvalidConfigs) == 0 {
			t.Skip("no invalid configurations given")
		}
		for name, cfg := range h.InvalidConfigs {
			t.Run(name, func(t *testing.T) {
				err := newProvider(t).Configure(ctx, cfg)
				if !errors.Is(err, sdk.ErrInvalidConfig) {
					t.Fatalf("Configure = %v, want an error wrapping sdk.ErrInvalidConfig", err)
				}
			})
		}
	})

	t.Run("Configure/again", func(t *testing.T) {
		p := configured(t)
		if err := p.Configure(ctx, h.Config); err != nil {
			t.Fatalf("second Configure = %v", err)
		}
		checkValid(t, p, h.Valid)
	})

	t.Run("Authenticate/valid", func(t *testing.T) {
		if len(h.Valid) == 0 {
			t.Fatal("the harness needs at least one valid credential")
		}
		p := configured(t)
		checkValid(t, p, h.Valid)
		// The caller owns what it gets: mutating it changes nothing for the next call.
		c := h.Valid[0]
		id, _ := p.Authenticate(ctx, c.Creds)
		for i := range id.Organizations {
			id.Organizations[i] = "mutated"
		}
		for i := range id.Groups {
			id.Groups[i] = "mutated"
		}
		for k := range id.Attributes {
			id.Attributes[k] = "mutated"
		}
		checkValid(t, p, h.Valid[:1])
	})

	t.Run("Authenticate/invalid", func(t *testing.T) {
		p := configured(t)
		cases := append(slices.Clone(h.Invalid),
			Case{Name: "empty token", Creds: sdk.Credentials{Header: sdk.HeaderAuthorization}},
			Case{Name: "garbage bearer", Creds: sdk.Credentials{Token: "sdktest-garbage-Zm9vYmFy.not.a.token", Header: sdk.HeaderAuthorization}},
			Case{Name: "garbage api key", Creds: sdk.Credentials{Token: "sdktest-garbage-" + strings.Repeat("k", 64), Header: sdk.HeaderDominoAPIKey}},
		)
		for _, c := range cases {
			t.Run(c.Name, func(t *testing.T) {
				_, err := p.Authenticate(ctx, c.Creds)
				if !errors.Is(err, sdk.ErrUnauthenticated) {
					t.Fatalf("Authenticate = %v, want an error wrapping sdk.ErrUnauthenticated", err)
				}
				if c.Creds.Token != "" && strings.Contains(err.Error(), c.Creds.Token) {
					t.Fatalf("the error reveals the credential: %q", err)
				}
			})
		}
	})

	t.Run("Authenticate/canceled", func(t *testing.T) {
		p := configured(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, _ = p.Authenticate(cctx, h.Valid[0].Creds) // either answer is fine; hanging is not
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Authenticate hangs on a canceled context")
		}
	})

	t.Run("Authenticate/concurrent", func(t *testing.T) {
		p := configured(t)
		var wg sync.WaitGroup
		errc := make(chan error, 64)
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 10 {
					c := h.Valid[(g+i)%len(h.Valid)]
					id, err := p.Authenticate(ctx, c.Creds)
					if err != nil {
						errc <- fmt.Errorf("%s: %w", c.Name, err)
						return
					}
					if id.ID != c.Want.ID {
						errc <- fmt.Errorf("%s: id %q, want %q", c.Name, id.ID, c.Want.ID)
						return
					}
					if _, err := p.Authenticate(ctx, sdk.Credentials{Token: "sdktest-wrong", Header: sdk.HeaderAuthorization}); !errors.Is(err, sdk.ErrUnauthenticated) {
						errc <- fmt.Errorf("wrong token: %w", err)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Error(err)
		}
	})

	t.Run("Authenticate/unavailable", func(t *testing.T) {
		if h.Break == nil {
			t.Skip("the harness cannot break this provider's backend")
		}
		p := configured(t)
		repair := h.Break(t)
		defer repair()
		_, err := p.Authenticate(ctx, h.Valid[0].Creds)
		if !errors.Is(err, sdk.ErrUnavailable) {
			t.Fatalf("Authenticate with the backend down = %v, want sdk.ErrUnavailable", err)
		}
		if errors.Is(err, sdk.ErrUnauthenticated) {
			t.Fatalf("an outage must not look like a bad credential: %v", err)
		}
	})
}

func checkValid(t *testing.T, p sdk.Provider, cases []Case) {
	t.Helper()
	for _, c := range cases {
		id, err := p.Authenticate(context.Background(), c.Creds)
		if err != nil {
			t.Errorf("%s: Authenticate = %v", c.Name, err)
			continue
		}
		if diff := Diff(c.Want, id); diff != "" {
			t.Errorf("%s: identity differs:\n%s", c.Name, diff)
		}
	}
}

// Diff compares identities the way the suite does; "" means equal.
func Diff(want, got sdk.Identity) string {
	var b strings.Builder
	field := func(name string, w, g any) {
		if !reflect.DeepEqual(w, g) {
			fmt.Fprintf(&b, "  %s: got %v, want %v\n", name, g, w)
		}
	}
	field("ID", want.ID, got.ID)
	field("Username", want.Username, got.Username)
	field("Email", want.Email, got.Email)
	field("Organizations", sorted(want.Organizations), sorted(got.Organizations))
	field("Groups", sorted(want.Groups), sorted(got.Groups))
	field("Admin", want.Admin, got.Admin)
	if len(want.Attributes) > 0 {
		field("Attributes", want.Attributes, got.Attributes)
	}
	if got.ID == "" {
		b.WriteString("  ID: empty; a provider must return a stable id\n")
	}
	return b.String()
}

func sorted(s []string) []string {
	out := append([]string{}, s...)
	slices.Sort(out)
	return out
}
