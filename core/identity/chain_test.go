package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/irsa-broker/irsa-broker/core/metrics"
	"github.com/irsa-broker/irsa-broker/internal/polltest"
	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// tokenProvider knows some tokens, answers others with a fixed error and
// counts its calls.
type tokenProvider struct {
	users map[string]string // token → user id
	err   error             // for tokens it does not know (default: unauthenticated)
	calls atomic.Int64
}

func (p *tokenProvider) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "tokens", Version: "1"}, nil
}
func (p *tokenProvider) Configure(context.Context, []byte) error { return nil }
func (p *tokenProvider) Authenticate(_ context.Context, c sdk.Credentials) (sdk.Identity, error) {
	p.calls.Add(1)
	if id, ok := p.users[c.Token]; ok {
		return sdk.Identity{ID: id, Username: id, Provider: "spoofed by the provider"}, nil
	}
	if p.err != nil {
		return sdk.Identity{}, p.err
	}
	return sdk.Identity{}, fmt.Errorf("%w: unknown token", sdk.ErrUnauthenticated)
}

func TestChainOrder(t *testing.T) {
	ctx := context.Background()
	first := &tokenProvider{users: map[string]string{"t1": "u1", "both": "first-user"}}
	second := &tokenProvider{users: map[string]string{"t2": "u2", "both": "second-user"}}
	m := metrics.New()
	a, err := NewChain([]Member{{Name: "first", Provider: first}, {Name: "second", Provider: second}}, Options{Metrics: m, TTL: -1, NegativeTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	bearer := func(tok string) sdk.Credentials { return sdk.Credentials{Token: tok, Header: sdk.HeaderAuthorization} }

	// The first provider that recognises a credential decides, and the
	// identity names it (whatever the provider put there).
	for _, c := range []struct{ tok, id, provider string }{{"t1", "u1", "first"}, {"t2", "u2", "second"}, {"both", "first-user", "first"}} {
		id, err := a.Authenticate(ctx, bearer(c.tok))
		if err != nil || id.ID != c.id || id.Provider != c.provider {
			t.Errorf("%s: %+v, %v; want %s from %s", c.tok, id, err, c.id, c.provider)
		}
	}
	// Rejected by all: unauthenticated, naming who was asked, never the token.
	_, err = a.Authenticate(ctx, bearer("secret-nobody"))
	if !errors.Is(err, sdk.ErrUnauthenticated) || !strings.Contains(err.Error(), "first, second") || strings.Contains(err.Error(), "secret-nobody") {
		t.Fatalf("unknown token = %v", err)
	}
	if got := counter(t, a, "ok", "provider", "second"); got != 1 {
		t.Errorf("authentications{ok,provider,second} = %v", got)
	}
	if got := counter(t, a, "unauthenticated", "provider", noProvider); got != 1 {
		t.Errorf("authentications{unauthenticated,provider,none} = %v", got)
	}
}

func counter(t *testing.T, a *Authenticator, result, source, provider string) float64 {
	t.Helper()
	return value(a.results.WithLabelValues(result, source, provider))
}

// TestChainOutageIsNotAFallThrough: a provider that cannot decide is the
// answer (503), naming itself; the next provider is not asked, so an outage
// never changes who a caller is.
func TestChainOutageIsNotAFallThrough(t *testing.T) {
	ctx := context.Background()
	down := &tokenProvider{err: fmt.Errorf("%w: backend 502", sdk.ErrUnavailable)}
	next := &tokenProvider{users: map[string]string{"tok": "u2"}}
	a, err := NewChain([]Member{{Name: "corp-sso", Provider: down}, {Name: "domino", Provider: next}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.Authenticate(ctx, sdk.Credentials{Token: "tok", Header: sdk.HeaderAuthorization})
	if !errors.Is(err, sdk.ErrUnavailable) || errors.Is(err, sdk.ErrUnauthenticated) || !strings.Contains(err.Error(), "corp-sso") {
		t.Fatalf("outage = %v", err)
	}
	if n := next.calls.Load(); n != 0 {
		t.Fatalf("the next provider was asked %d times during the first one's outage", n)
	}
	// Any other error of a provider is an outage too.
	down.err = errors.New("nil map")
	if _, err := a.Authenticate(ctx, sdk.Credentials{Token: "tok", Header: sdk.HeaderAuthorization}); !errors.Is(err, sdk.ErrUnavailable) || next.calls.Load() != 0 {
		t.Fatalf("internal error = %v (next asked %d)", err, next.calls.Load())
	}
	// Healthy while one provider answers.
	if err := a.Healthy(ctx); err != nil {
		t.Fatalf("Healthy = %v", err)
	}
}

// TestChainHeaders: a provider is offered only the headers it takes, so a
// provider that is down fails only the credentials it could have decided.
func TestChainHeaders(t *testing.T) {
	ctx := context.Background()
	oidc := &tokenProvider{err: fmt.Errorf("%w: issuer down", sdk.ErrUnavailable)}
	domino := &tokenProvider{users: map[string]string{"key": "u-key"}}
	a, err := NewChain([]Member{
		{Name: "oidc", Provider: oidc, Headers: []string{"authorization"}},
		{Name: "domino", Provider: domino, Headers: []string{sdk.HeaderDominoAPIKey}},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := a.Authenticate(ctx, sdk.Credentials{Token: "key", Header: sdk.HeaderDominoAPIKey})
	if err != nil || id.Provider != "domino" || oidc.calls.Load() != 0 {
		t.Fatalf("API key with the OIDC provider down = %+v, %v (oidc asked %d)", id, err, oidc.calls.Load())
	}
	if _, err := a.Authenticate(ctx, sdk.Credentials{Token: "key", Header: sdk.HeaderAuthorization}); !errors.Is(err, sdk.ErrUnavailable) || domino.calls.Load() != 1 {
		t.Fatalf("bearer with the OIDC provider down = %v (domino asked %d)", err, domino.calls.Load())
	}
	oidc.err = nil // rejects now
	if _, err := a.Authenticate(ctx, sdk.Credentials{Token: "key2", Header: sdk.HeaderAuthorization}); !errors.Is(err, sdk.ErrUnauthenticated) || domino.calls.Load() != 1 {
		t.Fatalf("bearer rejected by oidc = %v (domino asked %d: it takes no bearer tokens)", err, domino.calls.Load())
	}
}

// TestChainWarnsOfProvidersWithoutHeaders: in a list of more than one, a
// provider without headers is offered credentials meant for the others (a
// Domino API key reaches a third-party plugin); the broker says so at start,
// naming each such provider. One provider alone is offered everything anyway.
func TestChainWarnsOfProvidersWithoutHeaders(t *testing.T) {
	p := &tokenProvider{}
	bearer, apiKey := []string{sdk.HeaderAuthorization}, []string{sdk.HeaderDominoAPIKey}
	for name, c := range map[string]struct {
		ms   []Member
		want []string
	}{
		"one without headers":  {[]Member{{Name: "domino", Provider: p}}, nil},
		"all with headers":     {[]Member{{Name: "ci", Provider: p, Headers: bearer}, {Name: "domino", Provider: p, Headers: apiKey}}, nil},
		"both headers listed":  {[]Member{{Name: "ci", Provider: p, Headers: bearer}, {Name: "any", Provider: p, Headers: []string{sdk.HeaderAuthorization, sdk.HeaderDominoAPIKey}}}, nil},
		"first without":        {[]Member{{Name: "ci", Provider: p}, {Name: "domino", Provider: p, Headers: apiKey}}, []string{"ci"}},
		"two of three without": {[]Member{{Name: "ci", Provider: p, Headers: bearer}, {Name: "plugin", Provider: p}, {Name: "domino", Provider: p}}, []string{"plugin", "domino"}},
	} {
		t.Run(name, func(t *testing.T) {
			var logs bytes.Buffer
			if _, err := NewChain(c.ms, Options{Logger: hclog.New(&hclog.LoggerOptions{Output: &logs, JSONFormat: true, Level: hclog.Info})}); err != nil {
				t.Fatal(err)
			}
			raw := logs.String()
			var warned []string
			dec := json.NewDecoder(&logs)
			for dec.More() {
				var line map[string]any
				if err := dec.Decode(&line); err != nil {
					t.Fatalf("log: %v", err)
				}
				if line["@level"] == "warn" && strings.Contains(line["@message"].(string), "without headers") {
					warned = append(warned, line["provider"].(string))
				}
			}
			if !slices.Equal(warned, c.want) {
				t.Errorf("warned of %q, want %q; log:\n%s", warned, c.want, raw)
			}
		})
	}
}

func TestNewChainRefuses(t *testing.T) {
	p := &tokenProvider{}
	for name, ms := range map[string][]Member{
		"empty":        nil,
		"no name":      {{Provider: p}},
		"upper case":   {{Name: "Domino", Provider: p}},
		"label-unsafe": {{Name: `a"b`, Provider: p}},
		"none":         {{Name: "none", Provider: p}},
		"twice":        {{Name: "a", Provider: p}, {Name: "a", Provider: p}},
		"no provider":  {{Name: "a"}},
		"bad header":   {{Name: "a", Provider: p, Headers: []string{"Cookie"}}},
	} {
		if _, err := NewChain(ms, Options{}); !errors.Is(err, sdk.ErrInvalidConfig) {
			t.Errorf("%s: NewChain = %v", name, err)
		}
	}
}

// TestChainCrashIsolation runs two plugin processes behind one
// Authenticator: crashing one fails only the credentials offered to it,
// restarts only it, and the metrics name it.
func TestChainCrashIsolation(t *testing.T) {
	m := metrics.New()
	open := func(name string) *Plugin {
		return openT(t, PluginOptions{Name: "testkit", Provider: name, Metrics: m, MinBackoff: 50 * time.Millisecond, HealthInterval: time.Hour})
	}
	bearer, apiKey := open("bearer"), open("apikey")
	a, err := NewChain([]Member{
		{Name: "bearer", Provider: bearer, Headers: []string{sdk.HeaderAuthorization}},
		{Name: "apikey", Provider: apiKey, Headers: []string{sdk.HeaderDominoAPIKey}},
	}, Options{Metrics: m, TTL: -1, NegativeTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	oldPID := bearer.PID()
	if _, err := a.Authenticate(ctx, sdk.Credentials{Token: "crash", Header: sdk.HeaderAuthorization}); !errors.Is(err, sdk.ErrUnavailable) || !strings.Contains(err.Error(), "bearer") {
		t.Fatalf("crash = %v", err)
	}
	// The other provider's credentials are served throughout.
	id, err := a.Authenticate(ctx, sdk.Credentials{Token: "good", Header: sdk.HeaderDominoAPIKey})
	if err != nil || id.Provider != "apikey" {
		t.Fatalf("API key while the bearer provider restarts = %+v, %v", id, err)
	}
	polltest.Until(t, "the crashed provider to be back", func() bool {
		id, err := a.Authenticate(ctx, sdk.Credentials{Token: "good", Header: sdk.HeaderAuthorization})
		return err == nil && id.Provider == "bearer"
	})
	if bearer.PID() == oldPID {
		t.Fatal("the crashed plugin has its old pid")
	}
	if got := value(bearer.restarts); got != 1 {
		t.Errorf("restarts{provider=bearer} = %v", got)
	}
	if got := value(apiKey.restarts); got != 0 {
		t.Errorf("restarts{provider=apikey} = %v", got)
	}
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "irsa_identity_plugin_up" && len(f.GetMetric()) != 2 {
			t.Errorf("irsa_identity_plugin_up has %d series; want one per provider", len(f.GetMetric()))
		}
	}
}
