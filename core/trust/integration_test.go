package trust_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/hashicorp/go-hclog"
	"github.com/irsa-broker/irsa-broker/core/iam"
	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/core/trust"
	"github.com/irsa-broker/irsa-broker/internal/awssim"
	"github.com/irsa-broker/irsa-broker/internal/awssim/awssimtest"
	"github.com/prometheus/client_golang/prometheus"
)

// Integration tests: core/iam and core/trust through the real
// aws-sdk-go-v2 against the simulator.

const (
	acct     = "946429944765"
	provider = "oidc.eks.us-west-2.amazonaws.com/id/ABC"
)

func proxyTrust(subjects ...string) string {
	q := make([]string, len(subjects))
	for i, s := range subjects {
		q[i] = `"` + s + `"`
	}
	if len(q) == 0 {
		q = []string{`""`}
	}
	return `{"Version":"2012-10-17","Statement":[` +
		`{"Sid":"Ec2","Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"},` +
		`{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::` + acct + `:oidc-provider/` + provider + `"},` +
		`"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"` + provider + `:aud":"sts.amazonaws.com"},` +
		`"StringLike":{"` + provider + `:sub":[` + strings.Join(q, ",") + `]}}}]}`
}

func subject(name string) string {
	return model.Subject{Namespace: "domino-compute", ServiceAccount: name}.String()
}

type env struct {
	sim *awssim.Server
	url string
	n   atomic.Int64
}

func newEnv(tb testing.TB) *env {
	tb.Helper()
	for _, k := range []string{"AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_IAM", "AWS_REGION", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE"} {
		tb.Setenv(k, "")
	}
	tb.Setenv("AWS_CONFIG_FILE", os.DevNull)
	tb.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	tb.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	sim, url := awssimtest.StartTest(tb, awssim.Options{Logger: hclog.NewNullLogger()})
	sim.AddAccount(acct, 0)
	if _, err := sim.AddOIDCProvider(acct, "https://"+provider, []string{"sts.amazonaws.com"}); err != nil {
		tb.Fatal(err)
	}
	return &env{sim: sim, url: url}
}

func (e *env) role(tb testing.TB, name string, subjects ...string) string {
	tb.Helper()
	arn, err := e.sim.CreateRole(acct, name, "/", proxyTrust(subjects...))
	if err != nil {
		tb.Fatal(err)
	}
	return arn
}

func (e *env) client(tb testing.TB, denied ...string) *iam.Client {
	tb.Helper()
	key := fmt.Sprintf("AKIAINTEG%011d", e.n.Add(1))
	if err := e.sim.AddAccessKey(acct, key, "s3cr3t-"+key, denied...); err != nil {
		tb.Fatal(err)
	}
	c, err := iam.New(context.Background(), iam.Options{
		Region: "us-east-1", Endpoint: e.url,
		Credentials:    credentials.NewStaticCredentialsProvider(key, "s3cr3t-"+key, ""),
		RetryBaseDelay: 5 * time.Millisecond, MaxBackoff: 250 * time.Millisecond,
		MaxAttempts: 30,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func (e *env) subjects(tb testing.TB, role string) []string {
	tb.Helper()
	doc, err := e.sim.TrustPolicy(acct, role)
	if err != nil {
		tb.Fatal(err)
	}
	d, err := trust.Parse(doc, provider)
	if err != nil {
		tb.Fatal(err)
	}
	return d.Subjects()
}

func TestIntegrationConcurrentEnsuresLoseNothing(t *testing.T) {
	e := newEnv(t)
	e.sim.SetQuota(acct, 1<<16)
	arn := e.role(t, "acme-proxy", subject("old"))
	w := trust.NewWriter(e.client(t), trust.WriterOptions{OIDCProvider: provider})
	e.sim.SetLatency("", 20*time.Millisecond)
	// One GetRole per 500 ms: the second round's read is throttled and retried.
	e.sim.SetThrottle("GetRole", 2, 1)
	e.sim.ResetCalls()

	const n = 500
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- w.Ensure(context.Background(), arn, subject(fmt.Sprintf("run-%d", i)))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got := e.subjects(t, "acme-proxy")
	if len(got) != n+1 || got[0] != subject("old") {
		t.Fatalf("%d subjects after %d ensures (first %q)", len(got), n, got[0])
	}
	for i := range n {
		if !slices.Contains(got, subject(fmt.Sprintf("run-%d", i))) {
			t.Fatalf("run-%d lost", i)
		}
	}
	calls := e.sim.Calls()
	t.Logf("calls %v, throttled %v", calls, e.sim.Throttled())
	if u := calls["UpdateAssumeRolePolicy"]; u == 0 || u > n/20 {
		t.Fatalf("%d UpdateAssumeRolePolicy calls for %d requests, want a handful", u, n)
	}
	if e.sim.Throttled()["GetRole"] == 0 {
		t.Fatal("no call was throttled: the test does not cover retries")
	}

	// Removing them all again, concurrently, leaves the placeholder only.
	e.sim.ResetCalls()
	errs = make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- w.Remove(context.Background(), arn, subject(fmt.Sprintf("run-%d", i)))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := e.subjects(t, "acme-proxy"); !slices.Equal(got, []string{subject("old")}) {
		t.Fatalf("after removals: %q", got)
	}
	if u := e.sim.Calls()["UpdateAssumeRolePolicy"]; u > n/20 {
		t.Fatalf("%d writes for %d removals", u, n)
	}
}

func TestIntegrationAccessDenied(t *testing.T) {
	e := newEnv(t)
	arn := e.role(t, "acme-x")
	w := trust.NewWriter(e.client(t, "iam:UpdateAssumeRolePolicy"), trust.WriterOptions{OIDCProvider: provider})
	err := w.Ensure(context.Background(), arn, subject("run-1"))
	var ie *iam.Error
	if !errors.As(err, &ie) {
		t.Fatalf("got %T %v, want *iam.Error", err, err)
	}
	if ie.Kind != iam.KindAccessDenied || ie.Action != "iam:UpdateAssumeRolePolicy" || ie.Role != "acme-x" || ie.Code != "AccessDenied" {
		t.Fatalf("error %+v", ie)
	}
	if !strings.Contains(err.Error(), "iam:UpdateAssumeRolePolicy on role acme-x: AccessDenied: ") {
		t.Fatalf("message %q", err)
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Fatal("secret in error")
	}
	if got := e.subjects(t, "acme-x"); len(got) != 0 {
		t.Fatalf("subjects %q", got)
	}
}

func TestIntegrationQuotaAndPrune(t *testing.T) {
	e := newEnv(t) // default quota: 2048
	var olds []string
	for i := 0; len(proxyTrust(append(olds, subject("x"))...)) < 2048-60; i++ {
		olds = append(olds, subject(fmt.Sprintf("old-%02d", i)))
	}
	arn := e.role(t, "acme-full", olds...)
	var mu sync.Mutex
	var stale []string
	var calls int
	w := trust.NewWriter(e.client(t), trust.WriterOptions{OIDCProvider: provider,
		Prune: func(_ context.Context, role string, subjects []string) ([]string, error) {
			mu.Lock()
			defer mu.Unlock()
			calls++
			if role != arn {
				t.Errorf("prune for %s", role)
			}
			return stale, nil
		}})
	ctx := context.Background()

	// Fits without pruning.
	if err := w.Ensure(ctx, arn, subject("new-0")); err != nil {
		t.Fatal(err)
	}
	if calls != 0 {
		t.Fatal("pruned although it fitted")
	}
	// Does not fit; nothing stale → SizeError naming the role and the quota
	// the account reports.
	before, _ := e.sim.TrustPolicy(acct, "acme-full")
	err := w.Ensure(ctx, arn, subject("new-1"), subject("new-2"))
	var se *trust.SizeError
	if !errors.As(err, &se) || se.Role != arn || se.Quota != 2048 || se.Size <= 2048 {
		t.Fatalf("got %v, want SizeError over 2048", err)
	}
	if calls != 1 {
		t.Fatalf("prune called %d times, want 1", calls)
	}
	if after, _ := e.sim.TrustPolicy(acct, "acme-full"); after != before {
		t.Fatal("policy changed by a failed ensure")
	}
	// Two stale subjects make room.
	stale = []string{olds[0], olds[3]}
	if err := w.Ensure(ctx, arn, subject("new-1"), subject("new-2")); err != nil {
		t.Fatal(err)
	}
	got := e.subjects(t, "acme-full")
	for _, s := range []string{subject("new-0"), subject("new-1"), subject("new-2"), olds[1]} {
		if !slices.Contains(got, s) {
			t.Errorf("%s missing", s)
		}
	}
	if slices.Contains(got, olds[0]) || slices.Contains(got, olds[3]) {
		t.Error("stale subjects kept")
	}
}

// The simulator enforces the quota as AWS does; the writer's size must agree
// to the character: a document of exactly the quota is accepted, one more
// character is not.
func TestIntegrationSizeAgreesWithIAM(t *testing.T) {
	e := newEnv(t)
	c := e.client(t)
	ctx := context.Background()
	for i, file := range []string{"eks-basic.json", "foreign-statements.json", "multiple-managed.json", "deny-statement.json"} {
		raw, err := os.ReadFile("testdata/documents/" + file)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := trust.Parse(string(raw), provider)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := doc.Add(subject("sized")); err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("sized-%d", i)
		e.role(t, name)
		e.sim.SetQuota(acct, doc.Size()-1)
		if err := c.UpdateTrustPolicy(ctx, name, doc.String()); !iam.IsKind(err, iam.KindLimitExceeded) {
			t.Fatalf("%s: size %d, quota one less: got %v, want LimitExceeded", file, doc.Size(), err)
		}
		e.sim.SetQuota(acct, doc.Size())
		if err := c.UpdateTrustPolicy(ctx, name, doc.String()); err != nil {
			t.Fatalf("%s: size %d = quota: %v", file, doc.Size(), err)
		}
		// What GetRole returns (URL-encoded on the wire) parses back to
		// the same document.
		back, err := c.GetRole(ctx, name)
		if err != nil || back.TrustPolicy != doc.String() {
			t.Fatalf("%s: read back %q, %v", file, back.TrustPolicy, err)
		}
	}
}

func TestIntegrationSubjectsAndMissingRole(t *testing.T) {
	e := newEnv(t)
	arn := e.role(t, "acme-y", subject("a"), model.Subject{Namespace: "domino-compute", ServiceAccount: "b", Legacy: true}.String())
	w := trust.NewWriter(e.client(t), trust.WriterOptions{OIDCProvider: "https://" + provider})
	got, err := w.Subjects(context.Background(), arn)
	if err != nil || !slices.Equal(got, []string{subject("a"), "*:domino-compute:b"}) {
		t.Fatalf("Subjects = %q, %v", got, err)
	}
	err = w.Ensure(context.Background(), "arn:aws:iam::"+acct+":role/missing", subject("a"))
	if !iam.IsKind(err, iam.KindNoSuchEntity) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("got %v, want NoSuchEntity naming the role", err)
	}
}

// Issue 11, item 1: IAM finds roles by name in the caller's account, so an
// ARN with another account or path reached the same role by name. The writer
// now refuses any spelling but IAM's own, before writing, and two spellings
// can no longer be written concurrently outside one queue.
func TestIntegrationRefusesOtherSpellingsOfARole(t *testing.T) {
	e := newEnv(t)
	e.sim.SetQuota(acct, 1<<16)
	arn := e.role(t, "acme-proxy")
	reg := prometheus.NewRegistry()
	w := trust.NewWriter(e.client(t), trust.WriterOptions{OIDCProvider: provider, Registerer: reg})
	ctx := context.Background()

	spellings := []string{
		"arn:aws:iam::111111111111:role/acme-proxy",           // another account
		"arn:aws:iam::" + acct + ":role/some/path/acme-proxy", // another path
		"arn:aws:iam::" + acct + ":role/ACME-proxy",           // another case
		"arn:aws-us-gov:iam::" + acct + ":role/acme-proxy",    // another partition
	}
	for _, s := range spellings {
		err := w.Ensure(ctx, s, subject("intruder"))
		var me *trust.RoleMismatchError
		if !errors.As(err, &me) || me.Actual != arn {
			t.Errorf("Ensure(%s) = %v, want a RoleMismatchError naming %s", s, err, arn)
		}
		if err := w.Verify(ctx, s); !errors.As(err, &me) {
			t.Errorf("Verify(%s) = %v, want a RoleMismatchError", s, err)
		}
		if _, err := w.Subjects(ctx, s); !errors.As(err, &me) {
			t.Errorf("Subjects(%s) = %v, want a RoleMismatchError", s, err)
		}
	}
	mismatches := 0.0
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if f.GetName() == "irsa_trust_policy_errors_total" && l.GetValue() == "role_mismatch" {
					mismatches += m.GetCounter().GetValue()
				}
			}
		}
	}
	if mismatches != float64(len(spellings)) {
		t.Errorf("irsa_trust_policy_errors_total{reason=role_mismatch} = %v, want %d", mismatches, len(spellings))
	}
	if got := e.subjects(t, "acme-proxy"); slices.Contains(got, subject("intruder")) {
		t.Fatalf("a mismatched spelling wrote the role: %v", got)
	}
	var me *trust.RoleMismatchError
	if err := w.Ensure(ctx, spellings[0], subject("x")); !errors.As(err, &me) || !strings.Contains(err.Error(), "account 111111111111") {
		t.Errorf("error does not name the wrong account: %v", err)
	}
	if err := w.Verify(ctx, arn); err != nil {
		t.Fatalf("Verify(%s): %v", arn, err)
	}

	// 100 concurrent ensures, half through a second spelling: every correct
	// one lands, every other is refused, nothing is lost.
	e.sim.SetLatency("", 5*time.Millisecond)
	const n = 100
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			role := arn
			if i%2 == 1 {
				role = spellings[1]
			}
			errs[i] = w.Ensure(ctx, role, subject(fmt.Sprintf("run-%d", i)))
		}()
	}
	wg.Wait()
	got := e.subjects(t, "acme-proxy")
	for i := range n {
		want := i%2 == 0
		if (errs[i] == nil) != want {
			t.Errorf("ensure %d: %v", i, errs[i])
		}
		if slices.Contains(got, subject(fmt.Sprintf("run-%d", i))) != want {
			t.Errorf("run-%d present=%v, want %v", i, !want, want)
		}
	}
}
