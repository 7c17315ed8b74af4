package domino

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/irsa-broker/irsa-broker/plugins/sdk"
	"github.com/irsa-broker/irsa-broker/plugins/sdk/sdktest"
)

// fakeDomino answers as the Domino API does: the principal of a known
// credential, 200 with isAnonymous for an unknown API key, 401 for an unknown
// bearer token.
type fakeDomino struct {
	mode  atomic.Value // "", "5xx", "slow", "no-id", "bad-json"
	calls atomic.Int64
	// release ends requests held in "slow" mode (closed at clean-up).
	release chan struct{}
}

type user struct {
	id, name string
	admin    bool
	orgs     []string
}

var users = map[string]user{
	"Bearer alice-jwt": {"6441e3e0f5e0c93c5b6e4f01", "alice", false, []string{"irsa-iamrole-list-bucket", "acme"}},
	"key:bob-key":      {"6441e3e0f5e0c93c5b6e4f02", "bob", true, nil},
}

func (f *fakeDomino) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	mode, _ := f.mode.Load().(string)
	switch mode {
	case "5xx":
		http.Error(w, "<html>upstream connect error</html>", http.StatusBadGateway)
		return
	case "slow":
		// Never answers: only the client giving up ends the request.
		select {
		case <-r.Context().Done():
		case <-f.release:
		}
		return
	}
	cred := r.Header.Get("Authorization")
	if k := r.Header.Get("X-Domino-Api-Key"); k != "" {
		cred = "key:" + k
	}
	u, known := users[cred]
	switch r.URL.Path {
	case "/v4/auth/principal":
		if !known && strings.HasPrefix(cred, "Bearer ") {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		if mode == "bad-json" {
			w.Write([]byte("<html>"))
			return
		}
		body := map[string]any{"isAnonymous": !known, "isAdmin": u.admin, "canonicalName": u.name, "canonicalId": u.id}
		if !known {
			body = map[string]any{"isAnonymous": true, "isAdmin": false, "canonicalName": "Anonymous", "canonicalId": "anonymous"}
		}
		if mode == "no-id" {
			delete(body, "canonicalId")
		}
		json.NewEncoder(w).Encode(body)
	case "/v4/organizations/self":
		if !known {
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		orgs := []map[string]string{}
		for _, o := range u.orgs {
			orgs = append(orgs, map[string]string{"name": o, "id": "id-" + o})
		}
		json.NewEncoder(w).Encode(orgs)
	default:
		http.NotFound(w, r)
	}
}

func newServer(t *testing.T) (*fakeDomino, *httptest.Server) {
	f := &fakeDomino{release: make(chan struct{})}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(f.release) }) // runs first: Close waits for held requests
	return f, srv
}

var (
	alice = sdktest.Case{Name: "alice (bearer)", Creds: sdk.Credentials{Token: "alice-jwt", Header: sdk.HeaderAuthorization},
		Want: sdk.Identity{ID: "6441e3e0f5e0c93c5b6e4f01", Username: "alice", Organizations: []string{"irsa-iamrole-list-bucket", "acme"}}}
	bob = sdktest.Case{Name: "bob (api key)", Creds: sdk.Credentials{Token: "bob-key", Header: sdk.HeaderDominoAPIKey},
		Want: sdk.Identity{ID: "6441e3e0f5e0c93c5b6e4f02", Username: "bob", Admin: true, Organizations: []string{}}}
)

func TestConformance(t *testing.T) {
	f, srv := newServer(t)
	sdktest.Run(t, sdktest.Harness{
		New:    func(*testing.T) sdk.Provider { return New(nil) },
		Config: []byte("host: " + srv.URL + "\ntimeout: 2s\n"),
		InvalidConfigs: map[string][]byte{
			"unknown key":   []byte("hots: http://x\n"),
			"bad timeout":   []byte("timeout: soon\n"),
			"neg timeout":   []byte("timeout: -1s\n"),
			"bad host":      []byte("host: nucleus-frontend\n"),
			"missing ca":    []byte("ca_file: /nonexistent/ca.pem\n"),
			"not yaml":      []byte("host: [\n"),
			"ftp host":      []byte("host: ftp://x\n"),
			"no host value": []byte("host: http://\n"),
		},
		Valid:   []sdktest.Case{alice, bob},
		Invalid: []sdktest.Case{{Name: "anonymous api key", Creds: sdk.Credentials{Token: "wrong-key", Header: sdk.HeaderDominoAPIKey}}},
		Break: func(*testing.T) func() {
			f.mode.Store("5xx")
			return func() { f.mode.Store("") }
		},
	})
}

func TestAnswers(t *testing.T) {
	f, srv := newServer(t)
	p := New(nil)
	if err := p.Configure(context.Background(), []byte("host: "+srv.URL+"/\ntimeout: 300ms\n")); err != nil {
		t.Fatal(err)
	}
	// The configured timeout is the one in force: it alone ends a call to a
	// Domino that never answers ("slow" below; the context has no deadline).
	if got := p.client.Timeout; got != 300*time.Millisecond {
		t.Fatalf("client timeout %s, want the configured 300ms", got)
	}
	cases := []struct {
		mode  string
		creds sdk.Credentials
		want  error
	}{
		{"", alice.Creds, nil},
		{"", sdk.Credentials{Token: "wrong-key", Header: sdk.HeaderDominoAPIKey}, sdk.ErrUnauthenticated},  // 200 + isAnonymous
		{"", sdk.Credentials{Token: "wrong-jwt", Header: sdk.HeaderAuthorization}, sdk.ErrUnauthenticated}, // 401
		{"no-id", alice.Creds, sdk.ErrUnauthenticated},
		{"5xx", alice.Creds, sdk.ErrUnavailable},
		{"slow", alice.Creds, sdk.ErrUnavailable},
		{"bad-json", alice.Creds, sdk.ErrUnavailable},
	}
	for _, c := range cases {
		t.Run(c.mode+"/"+c.creds.Token, func(t *testing.T) {
			f.mode.Store(c.mode)
			err := authenticate(t, p, c.creds)
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if err != nil && strings.Contains(err.Error(), c.creds.Token) {
				t.Fatalf("error reveals the credential: %v", err)
			}
			if err != nil && strings.Contains(err.Error(), "html") {
				t.Fatalf("error carries Domino's body: %v", err)
			}
		})
	}
}

// authenticate calls p.Authenticate without a deadline of its own and fails
// t if the call is still waiting when t's deadline (less a margin to
// report) comes: a provider must bound its calls to Domino itself.
func authenticate(t *testing.T, p *Provider, c sdk.Credentials) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := p.Authenticate(context.Background(), c)
		done <- err
	}()
	var expired <-chan time.Time
	if deadline, ok := t.Deadline(); ok {
		timer := time.NewTimer(time.Until(deadline) - 5*time.Second)
		defer timer.Stop()
		expired = timer.C
	}
	select {
	case err := <-done:
		return err
	case <-expired:
		t.Fatal("Authenticate still waiting for a Domino that never answers: no timeout applied")
		return nil
	}
}

func TestUnreachable(t *testing.T) {
	_, srv := newServer(t)
	p := New(nil)
	if err := p.Configure(context.Background(), []byte("host: "+srv.URL)); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	if _, err := p.Authenticate(context.Background(), alice.Creds); !errors.Is(err, sdk.ErrUnavailable) || errors.Is(err, sdk.ErrUnauthenticated) {
		t.Fatalf("Domino down: %v", err)
	}
}

func TestDefaults(t *testing.T) {
	host, client, err := Config{}.build()
	if err != nil || host != DefaultHost || client.Timeout != 5*time.Second {
		t.Fatalf("%q %v %v", host, client.Timeout, err)
	}
	if _, err := New(nil).Authenticate(context.Background(), alice.Creds); !errors.Is(err, sdk.ErrUnavailable) {
		t.Fatalf("unconfigured: %v", err)
	}
}
