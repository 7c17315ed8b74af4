package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/spf13/cobra"

	"github.com/irsa-broker/irsa-broker/internal/devstack"
	"github.com/irsa-broker/irsa-broker/internal/devstack/devstacktest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// bin is the real irsactl, built once for the tests.
var bin string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "irsactl-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "irsactl")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build irsactl:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cli runs the built irsactl against a dev stack of its own.
type cli struct {
	t     *testing.T
	st    *devstack.Stack
	home  string
	env   map[string]string
	stdin io.Reader
}

func newCLI(t *testing.T, o devstack.Options) *cli {
	t.Helper()
	st := devstacktest.Start(t, o)
	home := t.TempDir()
	return &cli{t: t, st: st, home: home, env: map[string]string{
		"PATH": os.Getenv("PATH"), "HOME": home,
		envBroker: st.BrokerURL, envToken: "admin-token",
	}}
}

type result struct {
	stdout, stderr string
	code           int
}

func (c *cli) run(args ...string) result {
	c.t.Helper()
	cmd := exec.CommandContext(c.t.Context(), bin, args...)
	for k, v := range c.env {
		if v != "" {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &out, &errb, c.stdin
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		c.t.Fatalf("run irsactl %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

// ok runs and requires exit 0.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 0 {
		c.t.Fatalf("irsactl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// golden compares got, with the stack's varying parts replaced, with
// testdata/NAME.golden (rewritten with -update).
func (c *cli) golden(name, got string) {
	c.t.Helper()
	got = strings.ReplaceAll(got, c.st.BrokerURL, "http://BROKER")
	got = strings.ReplaceAll(got, c.home, "$HOME")
	got = decisionRE.ReplaceAllString(got, "${1}DECISION")
	got = revisionRE.ReplaceAllString(got, "${1}REV")
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			c.t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			c.t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		c.t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		c.t.Errorf("%s differs (run with -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

var (
	decisionRE = regexp.MustCompile(`(decision: |"decision_id": ")[0-9a-f]{16}`)
	revisionRE = regexp.MustCompile(`(broker revision )[0-9]+`)
)

const (
	assetAcct = "arn:aws:iam::524112250363:role/"
	proxyAcct = "arn:aws:iam::946429944765:role/"
)

func TestTables(t *testing.T) {
	c := newCLI(t, devstack.Options{})
	// config contacts no broker; fixed values keep the table's columns stable.
	c.env[envBroker], c.env[envConfig] = "https://irsa-svc.domino-field", "testdata/irsactl-config.yaml"
	c.golden("config", c.ok("config"))
	c.env[envBroker], c.env[envConfig] = c.st.BrokerURL, ""
	// config set creates the file it is pointed at; the setting is then in effect.
	c.env[envConfig], c.env[envBroker] = filepath.Join(c.home, "new", "irsactl.yaml"), ""
	c.ok("config", "set", "broker", c.st.BrokerURL)
	c.ok("config", "set", "output", "json")
	if out := c.ok("config", "-o", "table"); !regexp.MustCompile(`broker +` + regexp.QuoteMeta(c.st.BrokerURL) + ` +config ` + regexp.QuoteMeta(c.env[envConfig])).MatchString(out) {
		t.Errorf("config after set:\n%s", out)
	}
	if r := c.run("config", "set", "output", "xml"); r.code != exitUsage {
		t.Errorf("config set output xml: exit %d", r.code)
	}
	c.env[envConfig], c.env[envBroker] = "", c.st.BrokerURL
	c.golden("auth-whoami", c.ok("auth", "whoami"))
	c.golden("mappings-list", c.ok("mappings", "list"))
	c.golden("mappings-get", c.ok("mappings", "get", "irsa-iamrole-read-bucket"))
	c.golden("mappings-set-multi", c.ok("mappings", "set", "acme",
		"--asset", assetAcct+"acme-read-bucket-role", "--proxy", proxyAcct+"acme-read-bucket-role",
		"--asset", assetAcct+"acme-list-bucket-role", "--proxy", proxyAcct+"acme-list-bucket-role",
		"--trust-update=true", "--trust-update=false"))
	c.golden("mappings-list-after-set", c.ok("mappings", "list"))
	c.env[envToken] = "alice-token"
	c.golden("preview", c.ok("preview", "--run", "run1"))
	c.golden("auth-whoami.json", c.ok("auth", "whoami", "-o", "json"))
	c.golden("auth-whoami.yaml", c.ok("auth", "whoami", "-o", "yaml"))
}

func TestExitCodesAndErrors(t *testing.T) {
	c := newCLI(t, devstack.Options{})
	for _, tc := range []struct {
		name  string
		token string
		args  []string
		code  int
		want  []string // in stderr
	}{
		{"not found", "admin-token", []string{"mappings", "get", "nope"}, exitNotFound, []string{"mapping_not_found", "HTTP 404", "request id "}},
		{"forbidden", "alice-token", []string{"mappings", "list"}, exitForbidden, []string{"forbidden", "HTTP 403", "request id "}},
		{"bad token", "wrong", []string{"auth", "whoami"}, exitForbidden, []string{"HTTP 401"}},
		{"no token", "", []string{"auth", "whoami"}, exitForbidden, []string{"HTTP 401", "found no token"}},
		{"bad proxy role", "admin-token", []string{"mappings", "set", "zz", "--asset", assetAcct + "nope", "--proxy", proxyAcct + "nope"}, exitConflict, []string{"proxy_role_unusable", "request id "}},
		{"usage: unknown command", "admin-token", []string{"frobnicate"}, exitUsage, []string{`unknown command "frobnicate"`}},
		{"usage: unknown subcommand", "admin-token", []string{"mappings", "frobnicate"}, exitUsage, []string{`unknown command "frobnicate"`}},
		{"usage: unknown flag", "admin-token", []string{"mappings", "list", "--frob"}, exitUsage, []string{"unknown flag"}},
		{"usage: missing argument", "admin-token", []string{"mappings", "get"}, exitUsage, []string{"wants ORG"}},
		{"usage: unpaired", "admin-token", []string{"mappings", "set", "x", "--asset", assetAcct + "a"}, exitUsage, []string{"--asset and --proxy"}},
		{"usage: invalid ARN", "admin-token", []string{"mappings", "set", "x", "--asset", "nope", "--proxy", proxyAcct + "a"}, exitUsage, []string{"iam_role_arn"}},
		{"usage: bad run id", "alice-token", []string{"preview", "--run", "Run*1"}, exitUsage, []string{"--run"}},
		{"usage: bad output", "admin-token", []string{"mappings", "list", "-o", "xml"}, exitUsage, []string{"output"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			c.env[envToken] = tc.token
			r := c.run(tc.args...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d\nstderr: %s", r.code, tc.code, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr %q lacks %q", r.stderr, w)
				}
			}
			if r.stdout != "" {
				t.Errorf("a failure printed to stdout: %q", r.stdout)
			}
		})
	}
	t.Run("broker unreachable", func(t *testing.T) {
		c.t = t
		c.env[envToken] = "admin-token"
		c.env[envBroker] = "http://127.0.0.1:1"
		if r := c.run("mappings", "list"); r.code != exitUnavailable {
			t.Errorf("exit %d, want %d: %s", r.code, exitUnavailable, r.stderr)
		}
	})
}

// TestExportImport walks a backup and restore: export in both formats,
// break the mappings, look at the dry run (which writes nothing), apply,
// and find the export unchanged.
func TestExportImport(t *testing.T) {
	c := newCLI(t, devstack.Options{})
	c.ok("mappings", "set", "multi-one", "--multi", "--asset", assetAcct+"acme-read-bucket-role", "--proxy", proxyAcct+"acme-read-bucket-role")
	c.ok("mappings", "set", "two", "--asset", assetAcct+"acme-read-bucket-role", "--proxy", proxyAcct+"acme-read-bucket-role",
		"--asset", assetAcct+"acme-list-bucket-role", "--proxy", proxyAcct+"acme-list-bucket-role", "--trust-update=false")
	dir := t.TempDir()
	v2 := c.ok("mappings", "export")
	cm := c.ok("mappings", "export", "--format", "configmap")
	c.golden("export-configmap", cm)
	for name, text := range map[string]string{"v2.json": v2, "cm.yaml": cm} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stripRev := func(s string) string {
		var f mappingsFileV2
		if err := json.Unmarshal([]byte(s), &f); err != nil {
			t.Fatalf("export is not /v2 JSON: %v\n%s", err, s)
		}
		f.Revision = ""
		b, _ := json.Marshal(f)
		return string(b)
	}

	for _, file := range []string{"v2.json", "cm.yaml"} {
		t.Run(file, func(t *testing.T) {
			c.t = t
			// Break: one org removed, one changed, one added.
			c.ok("mappings", "delete", "multi-one")
			c.ok("mappings", "set", "two", "--asset", assetAcct+"acme-update-bucket-role", "--proxy", proxyAcct+"acme-update-bucket-role")
			c.ok("mappings", "set", "extra", "--asset", assetAcct+"acme-update-bucket-role", "--proxy", proxyAcct+"acme-update-bucket-role")
			broken := c.ok("mappings", "export")

			path := filepath.Join(dir, file)
			dry := c.run("mappings", "import", path, "--prune")
			if dry.code != 0 {
				t.Fatalf("dry run: exit %d: %s", dry.code, dry.stderr)
			}
			c.golden("import-dry-run", strings.ReplaceAll(dry.stdout, path, "FILE"))
			if !strings.Contains(dry.stderr, "--apply --if-revision") {
				t.Errorf("the dry run does not say how to apply: %q", dry.stderr)
			}
			if got := c.ok("mappings", "export"); stripRev(got) != stripRev(broken) {
				t.Fatalf("the dry run wrote:\n%s", got)
			}
			var plan importPlan
			if err := json.Unmarshal([]byte(c.ok("mappings", "import", path, "--prune", "-o", "json")), &plan); err != nil {
				t.Fatal(err)
			}
			c.ok("mappings", "import", path, "--prune", "--apply", "--if-revision", plan.Revision)
			if got := c.ok("mappings", "export"); stripRev(got) != stripRev(v2) {
				t.Errorf("restored:\n%s\nwant:\n%s", got, v2)
			}
			// Nothing left to do.
			again := c.ok("mappings", "import", path, "--prune")
			if !strings.Contains(again, "0 to add, 0 to change, 0 to delete, 5 unchanged") {
				t.Errorf("import after restore: %s", again)
			}
		})
	}
}

// badImport writes a file whose orgs, sorted, are written in this order:
// "aaa-new" (added), "irsa-iamrole-list-bucket" (changed), "zzz-bad", which
// names a proxy role IAM does not have and the broker refuses (409).
func badImport(t *testing.T) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "m.json")
	body := fmt.Sprintf(`{"aaa-new": {"iam_role_arn": %q, "proxy_iam_role_arn": %q},
	  "irsa-iamrole-list-bucket": [{"iam_role_arn": %q, "proxy_iam_role_arn": %q, "update_iam_role_trust_policy": "false"}],
	  "zzz-bad": {"iam_role_arn": %q, "proxy_iam_role_arn": %q}}`,
		assetAcct+"acme-read-bucket-role", proxyAcct+"acme-read-bucket-role",
		assetAcct+"acme-update-bucket-role", proxyAcct+"acme-update-bucket-role",
		assetAcct+"nope", proxyAcct+"nope")
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestImportIsAllOrNothing: the broker refuses one org of the batch, and
// nothing is written.
func TestImportIsAllOrNothing(t *testing.T) {
	c := newCLI(t, devstack.Options{})
	before := c.ok("mappings", "list")
	file := badImport(t)
	r := c.run("mappings", "import", file, "--apply")
	if r.code != exitConflict || !strings.Contains(r.stderr, `nothing written: proxy_role_unusable: org "zzz-bad"`) || strings.Contains(r.stderr, "undone") {
		t.Fatalf("exit %d, stderr: %s", r.code, r.stderr)
	}
	if after := c.ok("mappings", "list"); after != before {
		t.Errorf("a failed import left changes:\n%s\nwant:\n%s", after, before)
	}
	// A stale revision is refused before anything is written.
	r = c.run("mappings", "import", file, "--apply", "--if-revision", "no-such-revision")
	if r.code != exitConflict || !strings.Contains(r.stderr, "changed since the dry run") {
		t.Errorf("stale revision: exit %d: %s", r.code, r.stderr)
	}
	// An invalid file is refused before the broker is asked.
	if err := os.WriteFile(file, []byte(`{"bad org!": {"iam_role_arn": "x"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := c.run("mappings", "import", file); r.code != exitError || !strings.Contains(r.stderr, "bad org!") {
		t.Errorf("invalid file: exit %d: %s", r.code, r.stderr)
	}
}

// proxy puts a reverse proxy in front of the dev stack; before forwards a
// request, or answers it itself (returns true).
func (c *cli) proxy(before func(w http.ResponseWriter, r *http.Request) bool) {
	c.t.Helper()
	target, err := url.Parse(c.st.BrokerURL)
	if err != nil {
		c.t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !before(w, r) {
			rp.ServeHTTP(w, r)
		}
	}))
	c.t.Cleanup(srv.Close)
	c.env[envBroker] = srv.URL
}

// TestImportIsIsolated: another admin writes between irsactl's read of the
// mappings and its batch (the proxy makes that write first, every time):
// the batch is refused as stale, nothing of the file is written, and the
// other admin's write stays.
func TestImportIsIsolated(t *testing.T) {
	c := newCLI(t, devstack.Options{})
	file := filepath.Join(t.TempDir(), "m.json")
	if err := os.WriteFile(file, []byte(fmt.Sprintf(`{"aaa-new": {"iam_role_arn": %q, "proxy_iam_role_arn": %q}}`,
		assetAcct+"acme-read-bucket-role", proxyAcct+"acme-read-bucket-role")), 0o644); err != nil {
		t.Fatal(err)
	}
	var concurrent sync.Once
	c.proxy(func(_ http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPatch {
			concurrent.Do(func() {
				body := fmt.Sprintf(`{"role_pairs": [{"iam_role_arn": %q, "proxy_iam_role_arn": %q}]}`, assetAcct+"acme-update-bucket-role", proxyAcct+"acme-update-bucket-role")
				req, _ := http.NewRequest(http.MethodPut, c.st.BrokerURL+"/v2/mappings/other-admin", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer admin-token")
				if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusOK {
					t.Errorf("the other admin's write: %v %v", res, err)
				} else {
					res.Body.Close()
				}
			})
		}
		return false
	})
	r := c.run("mappings", "import", file, "--apply")
	if r.code != exitConflict || !strings.Contains(r.stderr, "changed since the dry run: nothing written") || !strings.Contains(r.stderr, "HTTP 412") {
		t.Fatalf("exit %d, stderr: %s", r.code, r.stderr)
	}
	after := c.ok("mappings", "list")
	if strings.Contains(after, "aaa-new") || !strings.Contains(after, "other-admin") {
		t.Fatalf("after the refused import:\n%s", after)
	}
	// Run again, it applies in one write.
	r = c.run("mappings", "import", file, "--apply")
	if r.code != 0 || !regexp.MustCompile(`applied 1 change\(s\) in one write \(broker revision [0-9]+\)`).MatchString(r.stderr) {
		t.Fatalf("second import: exit %d, stderr: %s", r.code, r.stderr)
	}
	if after := c.ok("mappings", "list"); !strings.Contains(after, "aaa-new") || !strings.Contains(after, "other-admin") {
		t.Fatalf("after the import:\n%s", after)
	}
}

// TestImportOnAnOlderBroker: a broker without PATCH /v2/mappings (405) is
// written org by org, undoing on a refusal, and irsactl says so.
func TestImportOnAnOlderBroker(t *testing.T) {
	c := newCLI(t, devstack.Options{})
	c.proxy(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPatch {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusMethodNotAllowed)
		fmt.Fprint(w, `{"error":{"code":"method_not_allowed","message":"PATCH is not allowed on /v2/mappings"}}`)
		return true
	})
	before := c.ok("mappings", "list")
	r := c.run("mappings", "import", badImport(t), "--apply")
	if r.code != exitConflict || !strings.Contains(r.stderr, "this broker has no batch write") || !strings.Contains(r.stderr, `org "zzz-bad"`) ||
		!strings.Contains(r.stderr, "2 change(s) written before the failure were undone") {
		t.Fatalf("exit %d, stderr: %s", r.code, r.stderr)
	}
	if after := c.ok("mappings", "list"); after != before {
		t.Errorf("a failed import left changes:\n%s\nwant:\n%s", after, before)
	}
}

func TestServiceAccounts(t *testing.T) {
	c := newCLI(t, devstack.Options{})
	c.golden("sa-create", c.ok("sa", "create", "alice"))
	c.ok("sa", "delete", "alice")
	if r := c.run("sa", "delete", "alice"); r.code != exitNotFound {
		t.Errorf("deleting a missing service account: exit %d: %s", r.code, r.stderr)
	}
	c.env[envToken] = "bob-token"
	if r := c.run("sa", "create", "bob"); r.code != exitForbidden {
		t.Errorf("a non-admin created a service account: exit %d: %s", r.code, r.stderr)
	}
}

// TestLegacyInvocations: the flags of the irsactl before the admin commands
// (`map -broker -run-id`, `whoami -wait -profile`) still work, end to end
// through the simulator, as the README's walkthrough and workload images use them.
func TestLegacyInvocations(t *testing.T) {
	c := newCLI(t, devstack.Options{})
	c.env[envBroker] = ""
	c.env[envToken] = "alice-token"
	config := c.ok("map", "-broker", c.st.BrokerURL, "-run-id", "run1")
	if !strings.Contains(config, "[profile acme-list-bucket-role]") {
		t.Fatalf("map printed %q", config)
	}
	resp, err := http.Get(c.st.BrokerURL + "/dev/workload-token?run_id=run1")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("workload token: %v %s", err, resp.Status)
	}
	dir := t.TempDir()
	tokFile, cfgFile := filepath.Join(dir, "token"), filepath.Join(dir, "config")
	config = strings.ReplaceAll(config, "/var/run/secrets/eks.amazonaws.com/serviceaccount/token", tokFile)
	if err := os.WriteFile(tokFile, tok, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgFile, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	c.env["AWS_CONFIG_FILE"] = cfgFile
	c.env["AWS_SHARED_CREDENTIALS_FILE"] = filepath.Join(dir, "none")
	c.env["AWS_ENDPOINT_URL_STS"] = c.st.AWSURL
	c.env["AWS_REGION"] = devstack.Region
	for _, args := range [][]string{
		{"whoami", "-wait", "1m", "-profile", "acme-list-bucket-role"},
		{"aws", "whoami", "--wait=1m", "--profile", "acme-list-bucket-role"},
	} {
		out := c.ok(args...)
		if !strings.Contains(out, "assumed-role/acme-list-bucket-role/") || !strings.Contains(out, "524112250363") {
			t.Errorf("irsactl %v printed %q", args, out)
		}
	}
	// `-wait` is rewritten only for the legacy commands.
	if r := c.run("mappings", "list", "-wait"); r.code != exitUsage {
		t.Errorf("mappings list -wait: exit %d", r.code)
	}
}

func TestCompletion(t *testing.T) {
	c := newCLI(t, devstack.Options{})
	if out := c.ok("completion", "bash"); !strings.Contains(out, "__start_irsactl") {
		t.Errorf("bash completion: %.200s", out)
	}
	// Org names complete from the broker.
	out := c.ok("__complete", "mappings", "get", "")
	for _, org := range []string{"irsa-iamrole-list-bucket", "irsa-iamrole-read-bucket", "irsa-iamrole-update-bucket"} {
		if !strings.Contains(out, org+"\n") {
			t.Errorf("completion of org lacks %s: %q", org, out)
		}
	}
	if out := c.ok("__complete", "mappings", "list", "-o", ""); !strings.Contains(out, "yaml\n") {
		t.Errorf("completion of -o: %q", out)
	}
}

// TestEveryCommandHasHelpAndExample walks the command tree.
func TestEveryCommandHasHelpAndExample(t *testing.T) {
	root := newRoot(env{getenv: func(string) string { return "" }})
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c.Name() == "help" || c.Name() == "completion" || c.Parent() != nil && c.Parent().Name() == "completion" {
			return
		}
		n++
		if c.Short == "" {
			t.Errorf("%s has no short help", c.CommandPath())
		}
		if c.Runnable() && len(c.Commands()) == 0 && c.Example == "" {
			t.Errorf("%s has no example", c.CommandPath())
		}
	}
	walk(root)
	if n < 15 {
		t.Errorf("walked only %d commands", n)
	}
}

func TestLegacyArgs(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"whoami -wait 3m", "whoami --wait 3m"},
		{"whoami -profile=p -wait=1s", "whoami --profile=p --wait=1s"},
		{"map -broker u -run-id r -token t", "map --broker u --run-id r --token t"},
		{"map --run r -o json", "map --run r -o json"},
		{"mappings list -wait", "mappings list -wait"},
		{"whoami -- -wait", "whoami -- -wait"},
	} {
		if got := strings.Join(legacyArgs(strings.Fields(tc.in)), " "); got != tc.want {
			t.Errorf("legacyArgs(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

const examplePolicies = "../../examples/policies"

// offline runs irsactl without a broker.
func offline(t *testing.T) *cli {
	return &cli{t: t, st: &devstack.Stack{BrokerURL: "http://127.0.0.1:1"}, home: t.TempDir(), env: map[string]string{"PATH": os.Getenv("PATH")}}
}

func TestPolicyCheckAndTest(t *testing.T) {
	c := offline(t)
	if out := c.ok("policy", "check", examplePolicies); !strings.HasPrefix(out, "ok: 2 module(s) served") {
		t.Errorf("check: %q", out)
	}
	if out := c.ok("policy", "test", examplePolicies); !strings.Contains(out, " passed, 0 failed") {
		t.Errorf("test: %q", out)
	}
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("grants.rego", "package irsa.grants\n\ngrants contains pair if {\n\tsome org in input.identity.organisations\n\tsome pair in data.mappings[org]\n}\n")
	r := c.run("policy", "check", dir)
	if r.code != exitError || !strings.Contains(r.stderr, filepath.Join(dir, "grants.rego")+":4") || !strings.Contains(r.stderr, "organisations") {
		t.Errorf("check of a typo: exit %d: %s", r.code, r.stderr)
	}
	// Fixed, with a test that fails.
	write("grants.rego", "package irsa.grants\n\ngrants contains pair if {\n\tsome org in input.identity.organizations\n\tsome pair in data.mappings[org]\n}\n")
	write("grants_test.rego", `package irsa.grants_test

import data.irsa.grants

test_member if {
	count(grants.grants) == 1 with input as {"identity": {"organizations": ["a"]}}
		with data.mappings as {"a": [{"org": "a", "iam_role_arn": "x", "proxy_iam_role_arn": "y", "update_iam_role_trust_policy": true}]}
}

test_wrong if {
	count(grants.grants) == 2 with input as {"identity": {"organizations": ["a"]}}
		with data.mappings as {"a": [{"org": "a", "iam_role_arn": "x", "proxy_iam_role_arn": "y", "update_iam_role_trust_policy": true}]}
}
`)
	c.ok("policy", "check", dir)
	r = c.run("policy", "test", dir, "-v")
	if r.code != exitError || !strings.Contains(r.stdout, "PASS data.irsa.grants_test.test_member") ||
		!strings.Contains(r.stdout, "FAIL data.irsa.grants_test.test_wrong") || !strings.Contains(r.stdout, "1 passed, 1 failed") {
		t.Errorf("test with a failure: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if out := c.ok("policy", "test", dir, "--run", "member"); !strings.Contains(out, "1 passed, 0 failed") {
		t.Errorf("--run: %q", out)
	}
}

func TestPolicyEval(t *testing.T) {
	c := offline(t)
	file := filepath.Join(t.TempDir(), "m.json")
	body := fmt.Sprintf(`{"data": [{"iam_role_arn": %q, "proxy_iam_role_arn": %q}, {"iam_role_arn": %q, "proxy_iam_role_arn": %q}]}`,
		assetAcct+"acme-read-bucket-role", proxyAcct+"acme-read-bucket-role", assetAcct+"acme-update-bucket-role", proxyAcct+"acme-update-bucket-role")
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	out := c.ok("policy", "eval", examplePolicies, "--user", "alice", "--orgs", "data", "--run", "run1", "--type", "cluster-worker", "--mappings", file, "--explain")
	head, trace, ok := strings.Cut(out, "\nexplain: ")
	if !ok {
		t.Fatalf("no explanation:\n%s", out)
	}
	c.golden("policy-eval", regexp.MustCompile(`revision [0-9a-f]{16}`).ReplaceAllString(strings.ReplaceAll(head, file, "FILE"), "revision REV"))
	if !strings.Contains(trace, "examples/policies/grants.rego:") || strings.Contains(trace, "default/") {
		t.Errorf("the trace is not trimmed to the author's modules:\n%s", trace)
	}
	// The workspace gets both roles; the editors' group may write mappings.
	out = c.ok("policy", "eval", examplePolicies, "--user", "ed", "--groups", "irsa-mapping-editors", "--orgs", "data", "--run", "run1", "--mappings", file, "-o", "json")
	var res evalResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Grants) != 2 || !res.Allow["mapping.write"] || res.Allow["mapping.delete"] {
		t.Errorf("eval: %+v", res)
	}
}

// TestPolicyEvalAgreesWithTheBroker: eval of the policy a broker serves
// gives the grants that broker's preview gives.
func TestPolicyEvalAgreesWithTheBroker(t *testing.T) {
	c := newCLI(t, devstack.Options{PolicyDir: examplePolicies})
	c.ok("mappings", "set", "irsa-iamrole-read-bucket", "--asset", assetAcct+"acme-read-bucket-role", "--proxy", proxyAcct+"acme-read-bucket-role",
		"--asset", assetAcct+"acme-update-bucket-role", "--proxy", proxyAcct+"acme-update-bucket-role")
	var eval evalResult
	if err := json.Unmarshal([]byte(c.ok("policy", "eval", examplePolicies, "--from-broker", "--user", "alice", "--id", "6441e3e0f5e0c93c5b6e4f01",
		"--orgs", "irsa-iamrole-list-bucket,irsa-iamrole-read-bucket", "--run", "run1", "--type", "cluster-worker", "-o", "json")), &eval); err != nil {
		t.Fatal(err)
	}
	c.env[envToken] = "alice-token"
	var prev mapResult
	if err := json.Unmarshal([]byte(c.ok("preview", "--run", "run1", "--type", "cluster-worker", "-o", "json")), &prev); err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(eval.Grants)
	want, _ := json.Marshal(prev.Grants)
	if string(got) != string(want) || len(prev.Grants) == 0 {
		t.Errorf("eval says %s, the broker %s", got, want)
	}
}
