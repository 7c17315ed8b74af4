package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/irsa-broker/irsa-broker/sidecar"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"DOMINO_IRSA_ENDPOINT":        "https://irsa-svc.domino-field",
		"DOMINO_API_PROXY":            "http://localhost:8899",
		"POD_INFO_PATH":               "/p/labels",
		"AWS_CONFIG_FILE":             "/p/config",
		"AWS_WEB_IDENTITY_TOKEN_FILE": "/p/token",
		"AWS_REGION":                  "eu-west-1",
		"AWS_ENDPOINT_URL_STS":        "http://127.0.0.1:4566",
		"AWS_ENDPOINT_URL":            "http://ignored",
		"IRSA_REFRESH_INTERVAL":       "90s",
		"IRSA_VERIFY":                 "false",
		"LOG_LEVEL":                   "debug",
	}
	c, lo, err := parseConfig(nil, envOf(env), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want := sidecar.DefaultConfig()
	want.BrokerEndpoint, want.PodInfoPath, want.ConfigFile, want.TokenFile = "https://irsa-svc.domino-field", "/p/labels", "/p/config", "/p/token"
	want.Region, want.STSEndpoint, want.RefreshInterval, want.Verify = "eu-west-1", "http://127.0.0.1:4566", 90*time.Second, false
	if c != want {
		t.Errorf("config =\n%+v\nwant\n%+v", c, want)
	}
	if lo.level != "debug" || lo.format != "json" {
		t.Errorf("log options = %+v", lo)
	}
}

func TestParseConfigFlagsOverrideEnv(t *testing.T) {
	env := map[string]string{"DOMINO_IRSA_ENDPOINT": "https://a", "AWS_ENDPOINT_URL": "http://generic", "AWS_DEFAULT_REGION": "ap-south-1"}
	c, _, err := parseConfig([]string{"--broker-url", "http://b:6000", "--addr", "127.0.0.1:7000", "--verify-deadline", "10s",
		"--insecure-skip-tls-verify", "--ca-file", "/ca.pem", "--log-format", "text"}, envOf(env), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.BrokerEndpoint != "http://b:6000" || c.Addr != "127.0.0.1:7000" || c.VerifyDeadline != 10*time.Second ||
		!c.InsecureSkipTLSVerify || c.CAFile != "/ca.pem" || c.STSEndpoint != "http://generic" || c.Region != "ap-south-1" {
		t.Errorf("config = %+v", c)
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, nil, "DOMINO_IRSA_ENDPOINT"},
		{[]string{"--broker-url", "https://b", "--log-format", "xml"}, nil, "json or text"},
		{[]string{"--broker-url", "https://b", "--log-level", "loud"}, nil, "not a level"},
		{[]string{"--broker-url", "https://b", "extra"}, nil, "unexpected arguments"},
		{[]string{"--broker-url", "https://b"}, map[string]string{"IRSA_REFRESH_INTERVAL": "soon"}, "IRSA_REFRESH_INTERVAL"},
		{[]string{"--broker-url", "https://b"}, map[string]string{"IRSA_VERIFY": "maybe"}, "IRSA_VERIFY"},
		{[]string{"--nope"}, nil, "flag provided but not defined"},
	} {
		_, _, err := parseConfig(tc.args, envOf(tc.env), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseConfig(%v, %v) = %v, want %q", tc.args, tc.env, err, tc.want)
		}
	}
}

func TestRealMainExitCodes(t *testing.T) {
	var out, errb bytes.Buffer
	if code := realMain(context.Background(), []string{"version"}, envOf(nil), &out, &errb); code != 0 || out.String() != "dev\n" {
		t.Errorf("version: %d %q", code, out.String())
	}
	if code := realMain(context.Background(), []string{"once"}, envOf(nil), &out, &errb); code != 2 || !strings.Contains(errb.String(), "DOMINO_IRSA_ENDPOINT") {
		t.Errorf("missing broker: %d %q", code, errb.String())
	}
	errb.Reset()
	if code := realMain(context.Background(), []string{"-h"}, envOf(nil), &out, &errb); code != 0 || !strings.Contains(errb.String(), "--refresh-interval") && !strings.Contains(errb.String(), "-refresh-interval") {
		t.Errorf("help: %d %q", code, errb.String())
	}
	// once against an unreachable broker with a short timeout: exit 1, JSON error log.
	errb.Reset()
	dir := t.TempDir()
	env := map[string]string{"DOMINO_IRSA_ENDPOINT": "http://127.0.0.1:1", "POD_INFO_PATH": dir + "/labels", "AWS_CONFIG_FILE": dir + "/config",
		"AWS_WEB_IDENTITY_TOKEN_FILE": dir + "/token", "IRSA_ONCE_TIMEOUT": "200ms", "IRSA_BACKOFF_INITIAL": "50ms"}
	if code := realMain(context.Background(), []string{"once"}, envOf(env), &out, &errb); code != 1 || !strings.Contains(errb.String(), `"@message":"irsa-sidecar failed"`) {
		t.Errorf("once failure: %d %s", code, errb.String())
	}
}

func TestProbe(t *testing.T) {
	var ready atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" || !ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	noEnv := func(string) string { return "" }
	var out, errb bytes.Buffer
	if code := realMain(context.Background(), []string{"probe", "--addr", addr}, noEnv, &out, &errb); code != 1 {
		t.Fatalf("not ready: exit %d", code)
	}
	ready.Store(true)
	if code := realMain(context.Background(), []string{"probe", "--addr", addr}, noEnv, &out, &errb); code != 0 {
		t.Fatalf("ready: exit %d: %s", code, errb.String())
	}
	srv.Close()
	if code := realMain(context.Background(), []string{"probe", "--addr", addr}, noEnv, &out, &errb); code != 1 {
		t.Fatalf("sidecar gone: exit %d", code)
	}
}
