package brokerclient

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
)

const (
	accessTok = "secret-access-token-123"
	podTok    = "eyJhbGciOiJSUzI1NiJ9.secret-pod-token.sig"
)

type seen struct {
	method, path, auth, pod, ctype, accept string
	body                                   brokerapi.MapRequest
}

func fakeBroker(t *testing.T, status int, hdr map[string]string, body string) (*httptest.Server, *seen) {
	t.Helper()
	s := &seen{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.method, s.path, s.auth, s.pod, s.ctype = r.Method, r.URL.Path, r.Header.Get("Authorization"), r.Header.Get(brokerapi.HeaderPodToken), r.Header.Get("Content-Type")
		s.accept = r.Header.Get("Accept")
		_ = json.NewDecoder(r.Body).Decode(&s.body)
		for k, v := range hdr {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(ts.Close)
	return ts, s
}

func TestMapSuccess(t *testing.T) {
	const cfg = "[profile a]\nrole_arn=arn:aws:iam::1:role/a\n"
	ts, s := fakeBroker(t, 200, map[string]string{"Content-Type": "text/plain"}, cfg)
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokFile, []byte(podTok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{Endpoint: ts.URL + "/", Access: StaticToken(accessTok), Pod: FileToken{Path: tokFile}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Map(context.Background(), brokerapi.MapRequest{RunID: "r1", WorkloadType: "cluster-worker"})
	if err != nil {
		t.Fatal(err)
	}
	if got != cfg {
		t.Errorf("config = %q", got)
	}
	if s.method != "POST" || s.path != brokerapi.PathMap || s.auth != "Bearer "+accessTok || s.pod != podTok || s.ctype != "application/json" || s.accept != "text/plain" {
		t.Errorf("request = %+v", s)
	}
	if s.body != (brokerapi.MapRequest{RunID: "r1", WorkloadType: "cluster-worker"}) {
		t.Errorf("body = %+v", s.body)
	}

	// Workload type omitted when empty; empty config is a valid answer.
	ts2, s2 := fakeBroker(t, 200, nil, "")
	raw := ""
	ts2.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		raw = string(b)
		s2.pod = r.Header.Get(brokerapi.HeaderPodToken)
	})
	c2, _ := New(Options{Endpoint: ts2.URL, Access: StaticToken(accessTok)})
	if got, err := c2.Map(context.Background(), brokerapi.MapRequest{RunID: "r1"}); err != nil || got != "" {
		t.Fatalf("empty config: %q, %v", got, err)
	}
	if raw != `{"run_id":"r1"}` {
		t.Errorf("body = %s", raw)
	}
	if s2.pod != "" {
		t.Errorf("pod token sent without a source: %q", s2.pod)
	}
}

func TestMapErrors(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		hdr       map[string]string
		body      string
		want      Error
		temporary bool
	}{
		{name: "401 json", status: 401, body: `{"error":{"code":"unauthenticated","message":"missing or invalid credentials","request_id":"req-1"}}`,
			want: Error{Status: 401, Code: "unauthenticated", Message: "missing or invalid credentials", RequestID: "req-1"}, temporary: true},
		{name: "403", status: 403, body: `{"error":{"code":"forbidden","message":"run r1 belongs to another user"}}`,
			want: Error{Status: 403, Code: "forbidden", Message: "run r1 belongs to another user"}},
		{name: "404", status: 404, body: `{"error":{"code":"run_not_found","message":"no pod for run r1"}}`,
			want: Error{Status: 404, Code: "run_not_found", Message: "no pod for run r1"}},
		{name: "503 retry-after seconds", status: 503, hdr: map[string]string{"Retry-After": "7"}, body: `{"error":{"code":"iam_unavailable","message":"IAM is unavailable"}}`,
			want: Error{Status: 503, Code: "iam_unavailable", Message: "IAM is unavailable", RetryAfter: 7 * time.Second}, temporary: true},
		{name: "502 html", status: 502, body: "<html>\n<body>Bad   Gateway</body>\n</html>",
			want: Error{Status: 502, Message: "<html> <body>Bad Gateway</body> </html>"}, temporary: true},
		{name: "429 bad retry-after", status: 429, hdr: map[string]string{"Retry-After": "soon"}, body: "",
			want: Error{Status: 429}, temporary: true},
		{name: "400 long body truncated", status: 400, body: strings.Repeat("x", 1000),
			want: Error{Status: 400, Message: strings.Repeat("x", maxMessage) + "…"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, _ := fakeBroker(t, tt.status, tt.hdr, tt.body)
			c, _ := New(Options{Endpoint: ts.URL, Access: StaticToken(accessTok), Pod: StaticToken(podTok)})
			_, err := c.Map(context.Background(), brokerapi.MapRequest{RunID: "r1"})
			var be *Error
			if !errors.As(err, &be) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if *be != tt.want {
				t.Errorf("error = %+v, want %+v", *be, tt.want)
			}
			if be.Temporary() != tt.temporary {
				t.Errorf("Temporary() = %v", be.Temporary())
			}
			if strings.Contains(err.Error(), accessTok) || strings.Contains(err.Error(), "secret-pod-token") {
				t.Errorf("token in error: %v", err)
			}
		})
	}
}

func TestRetryAfterDate(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := parseRetryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now); got != 90*time.Second {
		t.Errorf("date form = %v", got)
	}
	if got := parseRetryAfter(now.Add(-time.Minute).Format(http.TimeFormat), now); got != 0 {
		t.Errorf("past date = %v", got)
	}
	if got := parseRetryAfter("-3", now); got != 0 {
		t.Errorf("negative = %v", got)
	}
	if got := parseRetryAfter("999999", now); got != time.Hour {
		t.Errorf("huge = %v, want capped at 1h", got)
	}
}

func TestTokenErrors(t *testing.T) {
	ts, _ := fakeBroker(t, 200, nil, "")
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	_ = os.WriteFile(empty, []byte("\n"), 0o600)
	proxyFail := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
		_, _ = io.WriteString(w, accessTok) // even a leaking proxy must not leak through us
	}))
	defer proxyFail.Close()
	tests := []struct {
		name   string
		access TokenSource
		pod    TokenSource
		source string
		target error
	}{
		{"missing pod token file", StaticToken(accessTok), FileToken{Path: filepath.Join(dir, "nope")}, "pod_token", os.ErrNotExist},
		{"empty pod token file", StaticToken(accessTok), FileToken{Path: empty}, "pod_token", ErrEmptyToken},
		{"empty access token", StaticToken(""), nil, "access_token", ErrEmptyToken},
		{"proxy 500", ProxyToken{BaseURL: proxyFail.URL}, nil, "access_token", nil},
		{"proxy down", ProxyToken{BaseURL: "http://127.0.0.1:1"}, nil, "access_token", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := New(Options{Endpoint: ts.URL, Access: tt.access, Pod: tt.pod})
			_, err := c.Map(context.Background(), brokerapi.MapRequest{RunID: "r1"})
			var te *TokenError
			if !errors.As(err, &te) || te.Source != tt.source {
				t.Fatalf("err = %#v, want *TokenError from %s", err, tt.source)
			}
			if tt.target != nil && !errors.Is(err, tt.target) {
				t.Errorf("err = %v, want %v", err, tt.target)
			}
			if strings.Contains(err.Error(), accessTok) {
				t.Errorf("token in error: %v", err)
			}
		})
	}
}

func TestProxyToken(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/access-token" {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, "  alice-token\n")
	}))
	defer ts.Close()
	tok, err := ProxyToken{BaseURL: ts.URL + "/"}.Token(context.Background())
	if err != nil || tok != "alice-token" {
		t.Fatalf("token = %q, %v", tok, err)
	}
}

func TestNewValidation(t *testing.T) {
	for _, o := range []Options{
		{Access: StaticToken("x")},
		{Endpoint: "irsa-svc:443", Access: StaticToken("x")},
		{Endpoint: "https://irsa-svc"},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
}

func TestTLS(t *testing.T) {
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "[profile a]\n")
	}))
	defer ts.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	call := func(hc *http.Client) error {
		c, err := New(Options{Endpoint: ts.URL, Access: StaticToken(accessTok), HTTPClient: hc})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Map(ctx, brokerapi.MapRequest{RunID: "r1"})
		return err
	}

	plain, err := NewHTTPClient(TLSOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := call(plain); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("unknown CA accepted: %v", err)
	}

	withCA, err := NewHTTPClient(TLSOptions{CAFile: caFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := call(withCA); err != nil {
		t.Errorf("with CA bundle: %v", err)
	}

	var logs strings.Builder
	log := hclog.New(&hclog.LoggerOptions{Output: &logs})
	insecure, err := NewHTTPClient(TLSOptions{InsecureSkipVerify: true}, log)
	if err != nil {
		t.Fatal(err)
	}
	if err := call(insecure); err != nil {
		t.Errorf("insecure: %v", err)
	}
	if !strings.Contains(logs.String(), "[WARN]") || !strings.Contains(logs.String(), "verification") {
		t.Errorf("no warning logged for insecure mode: %q", logs.String())
	}

	bad := filepath.Join(t.TempDir(), "bad.pem")
	_ = os.WriteFile(bad, []byte("not a pem"), 0o644)
	if _, err := NewHTTPClient(TLSOptions{CAFile: bad}, nil); err == nil {
		t.Error("bad CA bundle accepted")
	}
	if _, err := NewHTTPClient(TLSOptions{CAFile: filepath.Join(t.TempDir(), "missing")}, nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing CA bundle: %v", err)
	}
}

func TestMapURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://irsa-svc.domino-field":                          "https://irsa-svc.domino-field/map_iam_roles_to_pod_sa",
		"https://irsa-svc.domino-field/":                         "https://irsa-svc.domino-field/map_iam_roles_to_pod_sa",
		"https://irsa-svc.domino-field/map_iam_roles_to_pod_sa":  "https://irsa-svc.domino-field/map_iam_roles_to_pod_sa",
		"https://irsa-svc.domino-field/map_iam_roles_to_pod_sa/": "https://irsa-svc.domino-field/map_iam_roles_to_pod_sa",
		"http://127.0.0.1:6000":                                  "http://127.0.0.1:6000/map_iam_roles_to_pod_sa",
	} {
		if got := MapURL(in); got != want {
			t.Errorf("MapURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestMapRefusesRedirects: a 3xx from the broker URL is an error naming the
// status and the Location; it is never followed, so the credentials (the
// user's bearer token, the pod token) reach nobody but the configured broker —
// whatever the injected HTTP client's redirect policy.
func TestMapRefusesRedirects(t *testing.T) {
	var elsewhere struct {
		sync.Mutex
		calls       int
		credentials []string
	}
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Lock()
		defer elsewhere.Unlock()
		elsewhere.calls++
		for _, h := range []string{"Authorization", "X-Domino-Api-Key", brokerapi.HeaderPodToken} {
			if r.Header.Get(h) != "" {
				elsewhere.credentials = append(elsewhere.credentials, h)
			}
		}
		// An attacker's empty 200 "config".
		w.WriteHeader(http.StatusOK)
	}))
	defer other.Close()

	hardened, err := NewHTTPClient(TLSOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	clients := map[string]*http.Client{"default client": nil, "http.DefaultClient": http.DefaultClient, "NewHTTPClient": hardened}
	for _, status := range []int{301, 302, 303, 307, 308} {
		for _, target := range []string{other.URL + "/steal", "/map_iam_roles_to_pod_sa/again"} {
			for cname, hc := range clients {
				t.Run(fmt.Sprintf("%d to %s with %s", status, target, cname), func(t *testing.T) {
					brokerCalls := 0
					broker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						brokerCalls++
						w.Header().Set("Location", target)
						w.WriteHeader(status)
					}))
					defer broker.Close()
					c, err := New(Options{Endpoint: broker.URL, HTTPClient: hc, Access: StaticToken(accessTok), Pod: StaticToken(podTok)})
					if err != nil {
						t.Fatal(err)
					}
					got, err := c.Map(context.Background(), brokerapi.MapRequest{RunID: "r1"})
					if err == nil {
						t.Fatalf("redirect followed; config = %q", got)
					}
					if !strings.Contains(err.Error(), strconv.Itoa(status)) || !strings.Contains(err.Error(), target) {
						t.Errorf("error %q does not name the status %d and the Location %s", err, status, target)
					}
					var re *RedirectError
					if !errors.As(err, &re) || re.Status != status || re.Location != target {
						t.Errorf("err = %#v, want *RedirectError{%d, %s}", err, status, target)
					}
					if brokerCalls != 1 {
						t.Errorf("broker called %d times, want 1 (no redirect followed)", brokerCalls)
					}
					if strings.Contains(err.Error(), accessTok) || strings.Contains(err.Error(), "secret-pod-token") {
						t.Errorf("token in error: %v", err)
					}
				})
			}
		}
	}
	// A broker that puts a credential into the Location does not get it into our errors.
	leaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", other.URL+"/?t="+accessTok+"&p="+podTok)
		w.WriteHeader(http.StatusFound)
	}))
	defer leaky.Close()
	c, _ := New(Options{Endpoint: leaky.URL, Access: StaticToken(accessTok), Pod: StaticToken(podTok)})
	if _, err := c.Map(context.Background(), brokerapi.MapRequest{RunID: "r1"}); err == nil || strings.Contains(err.Error(), accessTok) ||
		strings.Contains(err.Error(), "secret-pod-token") || !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("leaky Location: err = %v", err)
	}

	elsewhere.Lock()
	defer elsewhere.Unlock()
	if elsewhere.calls != 0 || len(elsewhere.credentials) != 0 {
		t.Errorf("the redirect target was called %d times and received %v", elsewhere.calls, elsewhere.credentials)
	}
}
