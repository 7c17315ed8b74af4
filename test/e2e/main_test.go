package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/irsa-broker/irsa-broker/core/mapping"
	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/internal/awssim"
	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
	"github.com/irsa-broker/irsa-broker/test/kubetest"
)

const (
	eksAccount    = "946429944765"
	assetsAccount = "524112250363"
	accessKey     = "AKIAE2ETESTKEY000001"
	secretKey     = "e2e-secret-key"
	audience      = "sts.amazonaws.com"
	computeNS     = "domino-compute"
	fieldNS       = "domino-field"
	nRoles        = 3
)

// env is the package's shared world: one control plane, one simulator, the
// broker binary and one running broker.
var env struct {
	cp         *kubetest.ControlPlane
	cs         *kubernetes.Clientset
	sim        *awssim.Server
	simURL     string
	provider   string // the issuer without scheme, as IAM names it
	brokerBin  string
	sidecarBin string
	dir        string
	usersFile  string
	tokenFile  string
	main       *brokerProc
	roleARNs   [nRoles]string // proxy roles
	assetARNs  [nRoles]string
	roleNames  [nRoles]string
	start      time.Time // when the test binary started, for testContext
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	env.start = time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	fail := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "e2e setup: "+format+"\n", a...)
		return 1
	}
	var err error
	env.dir, err = os.MkdirTemp("", "irsa-e2e-")
	if err != nil {
		return fail("%v", err)
	}
	defer os.RemoveAll(env.dir)

	// Build the broker while the control plane starts.
	buildErr := make(chan error, 1)
	go func() { buildErr <- buildBroker(ctx) }()
	env.cp, err = kubetest.Start(ctx, kubetest.Options{})
	if err != nil {
		<-buildErr
		return fail("%v", err)
	}
	defer env.cp.Stop()
	if err := <-buildErr; err != nil {
		return fail("%v", err)
	}
	if env.cs, err = env.cp.Clientset(0, 0); err != nil {
		return fail("%v", err)
	}
	if err := setupWorld(ctx); err != nil {
		return fail("%v", err)
	}
	env.main, err = startBroker(ctx, "main")
	if err != nil {
		return fail("%v", err)
	}
	defer env.main.stop()
	code := m.Run()
	bench.broker.stop()
	return code
}

// buildBroker builds the broker and the sidecar binaries the tests run.
func buildBroker(ctx context.Context) error {
	_, self, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(self), "..", "..")
	env.brokerBin = filepath.Join(env.dir, "irsa-broker")
	env.sidecarBin = filepath.Join(env.dir, "irsa-sidecar")
	for bin, pkg := range map[string]string{env.brokerBin: "./cmd/irsa-broker", env.sidecarBin: "./cmd/irsa-sidecar"} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
		}
	}
	return nil
}

func setupWorld(ctx context.Context) error {
	for _, ns := range []string{computeNS, fieldNS, "restart-compute", "bench-compute"} {
		if err := ensureNamespace(ctx, ns); err != nil {
			return err
		}
	}
	env.sim = awssim.New(awssim.Options{IssuerCAs: env.cp.CAPool, Logger: hclog.New(&hclog.LoggerOptions{Name: "awssim", Level: hclog.Warn})})
	ts := httptest.NewServer(env.sim)
	env.simURL = ts.URL
	env.provider = strings.TrimPrefix(env.cp.IssuerURL, "https://")
	env.sim.AddAccount(eksAccount, 10240)
	env.sim.AddAccount(assetsAccount, 0)
	if err := env.sim.AddAccessKey(eksAccount, accessKey, secretKey); err != nil {
		return err
	}
	providerARN, err := env.sim.AddOIDCProvider(eksAccount, env.cp.IssuerURL, []string{audience})
	if err != nil {
		return err
	}
	store := mapping.NewConfigMapStore(env.cs, fieldNS, "domino-org-iamrole-mapping", nil)
	for i := range nRoles {
		name := fmt.Sprintf("e2e-role-%d", i)
		proxyTrust := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":%q},`+
			`"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"%s:aud":%q},"StringLike":{"%s:sub":[]}}}]}`,
			providerARN, env.provider, audience, env.provider)
		if env.roleARNs[i], err = env.sim.CreateRole(eksAccount, name, "/", proxyTrust); err != nil {
			return err
		}
		perm := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::%s:role/%s"}]}`, assetsAccount, name)
		if err := env.sim.PutRolePolicy(eksAccount, name, "assume-asset", perm); err != nil {
			return err
		}
		assetTrust := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::%s:root"},"Action":"sts:AssumeRole"}]}`, eksAccount)
		if env.assetARNs[i], err = env.sim.CreateRole(assetsAccount, name, "/", assetTrust); err != nil {
			return err
		}
		env.roleNames[i] = name
		if err := store.Put(ctx, model.Mapping{Org: fmt.Sprintf("org-%d", i), Pairs: []model.RolePair{
			{IAMRoleARN: env.assetARNs[i], ProxyIAMRoleARN: env.roleARNs[i], UpdateTrustPolicy: true}}}); err != nil {
			return err
		}
	}
	env.usersFile = filepath.Join(env.dir, "users.yaml")
	users := `users:
  - {token: alice-token, id: u-alice, username: alice, admin: false, organizations: [org-0]}
  - {token: bob-token, id: u-bob, username: bob, admin: false, organizations: [org-0]}
  - {token: carol-token, id: u-carol, username: carol, admin: false, organizations: [org-0, org-1, org-2]}
  - {token: admin-token, id: u-admin, username: admin, admin: true, organizations: []}
  - {token: dave-token, id: u-dave, username: dave, admin: false, organizations: [org-pool]}
`
	if err := os.WriteFile(env.usersFile, []byte(users), 0o600); err != nil {
		return err
	}
	env.tokenFile = filepath.Join(env.dir, "token")
	return nil
}

func ensureNamespace(ctx context.Context, ns string) error {
	_, err := env.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	// Pods need the namespace's default service account (made by a controller we do not run).
	_, err = env.cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// brokerProc is a running `irsa-broker serve`.
type brokerProc struct {
	name string
	url  string
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs bytes.Buffer
	done chan struct{}
}

// startBroker runs the broker binary against the control plane and the
// simulator and waits until it is ready.
func startBroker(ctx context.Context, name string, extra ...string) (*brokerProc, error) {
	p, err := launchBroker(ctx, name, extra...)
	if err != nil {
		return nil, err
	}
	err = kubetest.Poll(ctx, 100*time.Millisecond, "broker "+name+" /readyz", func() (bool, error) {
		select {
		case <-p.done:
			return false, errors.New("the broker exited")
		default:
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+"/readyz", nil)
		if err != nil {
			return false, err
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, kubetest.Retry(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return false, kubetest.Retry(fmt.Errorf("/readyz: %s", res.Status))
		}
		return true, nil
	})
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("%w\n%s", err, p.logText())
	}
	return p, nil
}

// launchBroker runs the broker binary and waits until it listens.
func launchBroker(ctx context.Context, name string, extra ...string) (*brokerProc, error) {
	args := []string{"serve", "--insecure-http", "--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0",
		"--kubeconfig", env.cp.Kubeconfig, "--oidc-provider", env.provider,
		"--identity-plugin", "static", "--identity-config", env.usersFile,
		"--iam-endpoint", env.simURL, "--aws-region", "us-east-1",
		"--compute-namespace", computeNS, "--field-namespace", fieldNS, "--lease-namespace", fieldNS,
		"--token-file", env.tokenFile, "--replica-id", name, "--lease-duration", "4s",
		"--log-format", "json", "--log-level", "debug"}
	args = append(args, extra...)
	p := &brokerProc{name: name, done: make(chan struct{})}
	p.cmd = exec.Command(env.brokerBin, args...)
	p.cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID="+accessKey, "AWS_SECRET_ACCESS_KEY="+secretKey,
		"AWS_ENDPOINT_URL_STS="+env.simURL, "AWS_EC2_METADATA_DISABLED=true")
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting broker %s: %w", name, err)
	}
	addr := make(chan string, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			p.mu.Lock()
			p.logs.Write(line)
			p.logs.WriteByte('\n')
			p.mu.Unlock()
			var rec map[string]any
			if json.Unmarshal(line, &rec) == nil && rec["@message"] == "broker listening" {
				if a, ok := rec["addr"].(string); ok {
					select {
					case addr <- a:
					default:
					}
				}
			}
		}
		_ = p.cmd.Wait()
	}()
	select {
	case a := <-addr:
		p.url = "http://" + a
	case <-p.done:
		return nil, fmt.Errorf("broker %s exited:\n%s", name, p.logText())
	case <-ctx.Done():
		p.stop()
		return nil, fmt.Errorf("broker %s did not listen: %w\n%s", name, ctx.Err(), p.logText())
	}
	return p, nil
}

// logged reports whether p logged a record with message msg and the given
// fields (pairs of key and value, compared as text).
func (p *brokerProc) logged(msg string, kv ...string) bool {
	for _, line := range strings.Split(p.logText(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil || rec["@message"] != msg {
			continue
		}
		match := true
		for i := 0; i+1 < len(kv); i += 2 {
			if v, ok := rec[kv[i]]; !ok || fmt.Sprint(v) != kv[i+1] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

func (p *brokerProc) logText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// stopGrace is how long a broker may take to shut down after SIGTERM
// before it is killed; a grace period, not a synchronisation.
const stopGrace = 15 * time.Second

// stop sends SIGTERM and waits for the process to exit.
func (p *brokerProc) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopGrace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// startTestBroker starts a broker for one test and stops it at the end,
// printing its logs when the test failed.
func startTestBroker(t testing.TB, name string, extra ...string) *brokerProc {
	t.Helper()
	return testBroker(t, startBroker, name, extra...)
}

// testBroker runs start (startBroker or launchBroker) for one test and
// stops the broker at the end, printing its logs when the test failed.
func testBroker(t testing.TB, start func(context.Context, string, ...string) (*brokerProc, error), name string, extra ...string) *brokerProc {
	t.Helper()
	ctx, cancel := testContext(t)
	defer cancel()
	p, err := start(ctx, name, extra...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("logs of broker %s:\n%s", name, tail(p.logText(), 20000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// call sends a JSON request and returns the status and body.
func call(t testing.TB, method, url, token string, body any, header ...string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// mapRun posts the legacy map request as the sidecar does.
func mapRun(t testing.TB, p *brokerProc, userToken, runID, podToken string) (int, string) {
	t.Helper()
	var h []string
	if podToken != "" {
		h = []string{"X-Irsa-Pod-Token", podToken}
	}
	return call(t, http.MethodPost, p.url+"/map_iam_roles_to_pod_sa", userToken, map[string]string{"run_id": runID}, h...)
}

// mapSeen maps runID through p and returns the config, retrying the 404
// of a broker whose pod cache has not yet seen a pod just created; any
// other answer fails the test.
func mapSeen(t testing.TB, p *brokerProc, userToken, runID, podToken string) string {
	t.Helper()
	var body string
	poll(t, 5*time.Millisecond, "broker "+p.name+" mapping "+runID, func() (bool, error) {
		code, b := mapRun(t, p, userToken, runID, podToken)
		body = b
		switch code {
		case http.StatusOK:
			return true, nil
		case http.StatusNotFound:
			return false, kubetest.Retry(fmt.Errorf("map: %d %s", code, b))
		}
		return false, fmt.Errorf("map: %d %s", code, b)
	})
	return body
}

// runPod creates run runID's service account and Pending pod in ns.
func runPod(t testing.TB, ns, runID, userID string) *corev1.Pod {
	t.Helper()
	ctx := context.Background()
	sa := "run-" + runID
	if _, err := env.cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	return createPod(t, ns, runID+"-pod", runID, userID, sa)
}

func createPod(t testing.TB, ns, name, runID, userID, sa string) *corev1.Pod {
	t.Helper()
	no := false
	p, err := env.cs.CoreV1().Pods(ns).Create(context.Background(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
			brokerapi.LabelExecutionID: runID, brokerapi.LabelStartingUser: userID, "dominodatalab.com/workload-type": "Workspace"}},
		Spec: corev1.PodSpec{ServiceAccountName: sa, AutomountServiceAccountToken: &no,
			Containers: []corev1.Container{{Name: "run", Image: "example.invalid/run:1"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// podToken asks TokenRequest for the pod's projected token, bound to the pod.
func podToken(t testing.TB, p *corev1.Pod) string {
	t.Helper()
	exp := int64(3600)
	tr, err := env.cs.CoreV1().ServiceAccounts(p.Namespace).CreateToken(context.Background(), p.Spec.ServiceAccountName, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{Audiences: []string{audience}, ExpirationSeconds: &exp,
			BoundObjectRef: &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: p.Name, UID: p.UID}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr.Status.Token
}

func deletePod(t testing.TB, p *corev1.Pod) {
	t.Helper()
	zero := int64(0)
	err := env.cs.CoreV1().Pods(p.Namespace).Delete(context.Background(), p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
}

// trustSubjects returns the sub values of a proxy role's trust policy, from the simulator.
func trustSubjects(t testing.TB, role int) []string {
	t.Helper()
	doc, err := env.sim.TrustPolicy(eksAccount, env.roleNames[role])
	if err != nil {
		t.Fatal(err)
	}
	var pol struct {
		Statement []struct {
			Condition map[string]map[string]any
		}
	}
	if err := json.Unmarshal([]byte(doc), &pol); err != nil {
		t.Fatalf("trust policy %s: %v", doc, err)
	}
	var out []string
	for _, st := range pol.Statement {
		switch v := st.Condition["StringLike"][env.provider+":sub"].(type) {
		case string:
			out = append(out, v)
		case []any:
			for _, s := range v {
				out = append(out, s.(string))
			}
		}
	}
	return out
}

func subject(ns, sa string) string { return "system:serviceaccount:" + ns + ":" + sa }

func hasSubject(t testing.TB, role int, sub string) bool {
	for _, s := range trustSubjects(t, role) {
		if s == sub {
			return true
		}
	}
	return false
}

// reportMargin is kept from a test's deadline so that a wait that runs
// out fails the test with a message (and its clean-ups run) before the
// test binary's timeout panics.
const reportMargin = 10 * time.Second

// testContext ends at tb's deadline less reportMargin: at the -timeout of
// the test binary, counted from its start for benchmarks, which have no
// Deadline. Without -timeout it has no deadline.
func testContext(tb testing.TB) (context.Context, context.CancelFunc) {
	var deadline time.Time
	if d, ok := tb.(interface{ Deadline() (time.Time, bool) }); ok {
		deadline, _ = d.Deadline()
	} else if f := flag.Lookup("test.timeout"); f != nil {
		if timeout, ok := f.Value.(flag.Getter).Get().(time.Duration); ok && timeout > 0 {
			deadline = env.start.Add(timeout)
		}
	}
	if deadline.IsZero() {
		return context.WithCancel(context.Background())
	}
	return context.WithDeadline(context.Background(), deadline.Add(-reportMargin))
}

// poll checks cond every interval until it holds, within the test's
// deadline (testContext); cond's error fails the test at once, unless made
// by kubetest.Retry.
func poll(tb testing.TB, interval time.Duration, what string, cond func() (bool, error)) {
	tb.Helper()
	ctx, cancel := testContext(tb)
	defer cancel()
	if err := kubetest.Poll(ctx, interval, what, cond); err != nil {
		tb.Fatal(err)
	}
}

// eventually waits, within the test's deadline, until ok holds.
func eventually(tb testing.TB, what string, ok func() bool) {
	tb.Helper()
	poll(tb, 20*time.Millisecond, what, func() (bool, error) { return ok(), nil })
}
