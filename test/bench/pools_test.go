package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/irsa-broker/irsa-broker/core/broker"
	"github.com/irsa-broker/irsa-broker/core/iam"
	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/core/trust"
	"github.com/irsa-broker/irsa-broker/internal/devstack"
	"github.com/irsa-broker/irsa-broker/internal/devstack/devstacktest"
)

// BenchmarkPoolCapacity maps 1,000 concurrent runs of one org (bob's,
// irsa-iamrole-update-bucket) through the dev stack's HTTP API, with 50 ms
// added to every IAM and STS call and the default trust-policy quota of
// 2,048 characters, three ways: one proxy role, a static pool of 40 proxy
// roles, and an elastic pool that starts with one member. It prints, side
// by side, how many runs were mapped and refused, the members used, IAM
// reads, writes and creates, and the wall time; then sends a random sample
// of mapped runs through the AWS SDK's own credential chain to the asset
// role (which trusts the pools by an aws:PrincipalArn ArnLike condition on
// their paths); then cleans up every run as the clean-up leader does (all
// pods gone: a full reconcile, then the deletion of empty elastic members)
// and prints how long that took.
//
// The same three follow with per-user service accounts (1,000 runs of 200
// users, five runs each, all run as their user's service account, so 200
// subjects). The dev stack resolves workloads without Kubernetes
// (--workloads=caller), which refuses --per-user-service-accounts; those
// columns therefore run serve's Kubernetes-mode graph (core/wire, as
// TestBuildKubernetes does) over the same simulator, mappings and HTTP API,
// with client-go's fake Kubernetes API holding one pod per run and
// --trust-lock=none like the dev stack. Nothing here fails on time.
func BenchmarkPoolCapacity(b *testing.B) {
	for range b.N {
		b.StopTimer()
		rows := []capacityRow{
			runCapacity(b, "one proxy role", setupSingle, false),
			runCapacity(b, "static pool (40)", setupStatic, false),
			runCapacity(b, "elastic pool (1+50)", setupElastic, false),
			runCapacity(b, "per-user: one role", setupSingle, true),
			runCapacity(b, "per-user: static (40)", setupStatic, true),
			runCapacity(b, "per-user: elastic", setupElastic, true),
		}
		// Stdout, not b.Log: go test cuts a benchmark's log to 10 lines without -v.
		fmt.Printf("\n%s\n", capacityTable(rows))
		for _, r := range rows {
			if !r.single && r.failed > 0 {
				b.Fatalf("%s: %d of %d runs refused", r.name, r.failed, capacityRuns)
			}
			if r.verified != r.mapped || r.sampleOK != r.sampled {
				b.Fatalf("%s: %d of %d subjects in IAM, %d of %d through the SDK chain", r.name, r.verified, r.mapped, r.sampleOK, r.sampled)
			}
		}
		b.StartTimer()
	}
}

const (
	capacityRuns    = 1000
	capacityLatency = 50 * time.Millisecond
	capacitySample  = 5
	capacityUsers   = 200 // per-user service accounts: run i belongs to user i % capacityUsers
	poolRole        = "acme-update-bucket-role"
	poolOrg         = "irsa-iamrole-update-bucket"
)

type capacityRow struct {
	name                      string
	single, perUser           bool
	mapped, failed, members   int
	reads, lists, writes, new int
	wall                      time.Duration
	p50, p99                  time.Duration
	sampled, sampleOK         int
	verified                  int
	cleanup                   time.Duration
	removed, deleted          int
}

// setup maps the org and returns its pair (for clean-up).
type setup func(b *testing.B, st *devstack.Stack) model.RolePair

func arnOf(acct, pathName string) string { return "arn:aws:iam::" + acct + ":role/" + pathName }

// trustPools makes the asset role trust the seeded proxy role and both
// pools by aws:PrincipalArn on their paths, not by listing members.
func trustPools(b *testing.B, st *devstack.Stack) {
	doc := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::%[1]s:root"},"Action":"sts:AssumeRole",`+
		`"Condition":{"ArnLike":{"aws:PrincipalArn":["arn:aws:iam::%[1]s:role/%[2]s","arn:aws:iam::%[1]s:role/irsa-proxy/update/*","arn:aws:iam::%[1]s:role/irsa-pools/update/*"]}}}]}`,
		devstack.EKSAccount, poolRole)
	if err := st.Sim.UpdateAssumeRolePolicy(devstack.AssetsAccount, poolRole, doc); err != nil {
		b.Fatal(err)
	}
}

func putPair(b *testing.B, st *devstack.Stack, p model.RolePair) model.RolePair {
	if err := st.Mappings.Put(context.Background(), model.Mapping{Org: poolOrg, Pairs: []model.RolePair{p}}); err != nil {
		b.Fatal(err)
	}
	return p
}

func setupSingle(b *testing.B, st *devstack.Stack) model.RolePair {
	return putPair(b, st, model.RolePair{IAMRoleARN: arnOf(devstack.AssetsAccount, poolRole), ProxyIAMRoleARN: arnOf(devstack.EKSAccount, poolRole), UpdateTrustPolicy: true})
}

func setupStatic(b *testing.B, st *devstack.Stack) model.RolePair {
	var members []string
	for n := 1; n <= 40; n++ {
		members = append(members, devstacktest.AddProxyRole(b, st, poolRole, "/irsa-proxy/update/", fmt.Sprintf("update-static-%02d", n)))
	}
	return putPair(b, st, model.RolePair{IAMRoleARN: arnOf(devstack.AssetsAccount, poolRole), ProxyIAMRoleARN: members[0], UpdateTrustPolicy: true,
		ProxyPool: &model.ProxyPool{Name: "update", Members: members}})
}

func setupElastic(b *testing.B, st *devstack.Stack) model.RolePair {
	boundary, err := st.Sim.CreatePolicy(devstack.EKSAccount, "irsa-pool-boundary", "/",
		fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::%s:role/%s"}]}`, devstack.AssetsAccount, poolRole))
	if err != nil {
		b.Fatal(err)
	}
	tmpl := arnOf(devstack.EKSAccount, poolRole) // the seeded proxy role is the template and the first member
	return putPair(b, st, model.RolePair{IAMRoleARN: arnOf(devstack.AssetsAccount, poolRole), ProxyIAMRoleARN: tmpl, UpdateTrustPolicy: true,
		ProxyPool: &model.ProxyPool{Name: "update", Members: []string{tmpl}, Elastic: &model.ElasticPool{
			TemplateRoleARN: tmpl, Path: "/irsa-pools/update/", PermissionsBoundaryARN: boundary, MaxMembers: 50, EmptyGraceSeconds: 60}}})
}

func runCapacity(b *testing.B, name string, setup setup, perUser bool) capacityRow {
	st := devstacktest.Start(b, devstack.Options{})
	trustPools(b, st)
	pair := setup(b, st)
	row := capacityRow{name: name, single: pair.ProxyPool == nil, perUser: perUser}
	brokerURL, token := st.BrokerURL, func(int) string { return "bob-token" }
	if perUser {
		brokerURL = perUserBroker(b, st)
		token = func(i int) string { return capacityUser(i).Token }
	}

	var err error
	st.Sim.SetLatency("", capacityLatency)
	st.Sim.ResetCalls()
	configs, lat, failed, wall := burst(b, brokerURL, capacityRuns, token)
	calls := st.Sim.Calls()
	row.wall, row.failed, row.mapped = wall, failed, capacityRuns-failed
	row.reads, row.lists, row.writes, row.new = calls["GetRole"], calls["ListRoles"], calls["UpdateAssumeRolePolicy"], calls["CreateRole"]
	row.p50, row.p99 = percentile(lat, .5), percentile(lat, .99)
	used := map[string]bool{}
	var mapped []int
	for i, c := range configs {
		if c == "" {
			continue
		}
		mapped = append(mapped, i)
		for _, line := range strings.Split(c, "\n") {
			if r, ok := strings.CutPrefix(line, "role_arn="); ok && strings.Contains(r, devstack.EKSAccount) {
				used[r] = true
			}
		}
	}
	row.members = len(used)

	// Every mapped run's subject is in the trust policy of the member its
	// config names.
	docs := map[string]string{}
	for _, i := range mapped {
		member := ""
		for _, line := range strings.Split(configs[i], "\n") {
			if r, ok := strings.CutPrefix(line, "role_arn="); ok && strings.Contains(r, devstack.EKSAccount) {
				member = r
			}
		}
		name := member[strings.LastIndex(member, "/")+1:]
		if _, ok := docs[name]; !ok {
			if docs[name], err = st.Sim.TrustPolicy(devstack.EKSAccount, name); err != nil {
				b.Fatal(err)
			}
		}
		if strings.Contains(docs[name], `"`+model.Subject{Namespace: "domino-compute", ServiceAccount: capacitySA(i, perUser)}.String()+`"`) {
			row.verified++
		}
	}

	// A random sample through the SDK's chain: web identity on the member,
	// then the asset role.
	rng := rand.New(rand.NewPCG(1, uint64(len(name))))
	for range min(capacitySample, len(mapped)) {
		i := mapped[rng.IntN(len(mapped))]
		row.sampled++
		if err := viaSDK(b, st, capacitySA(i, perUser), configs[i]); err != nil {
			b.Logf("%s: run cap-%04d through the SDK chain: %v", name, i, err)
			continue
		}
		row.sampleOK++
	}

	// Clean-up as the leader does it once every pod is gone.
	row.cleanup, row.removed, row.deleted = cleanUp(b, st, pair)
	st.Sim.SetLatency("", 0)
	return row
}

// burst sends n map requests at once (one goroutine each) and returns the
// configs (empty when refused), latencies, the number refused and the wall
// time.
func burst(b *testing.B, brokerURL string, n int, token func(i int) string) ([]string, []time.Duration, int, time.Duration) {
	tr := &http.Transport{MaxIdleConns: n, MaxIdleConnsPerHost: n}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Minute}
	configs := make([]string, n)
	lat := make([]time.Duration, n)
	var mu sync.Mutex
	failed := 0
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", brokerURL+"/map_iam_roles_to_pod_sa", strings.NewReader(fmt.Sprintf(`{"run_id":"cap-%04d"}`, i)))
			req.Header.Set("Authorization", "Bearer "+token(i))
			t0 := time.Now()
			res, err := c.Do(req)
			if err != nil {
				mu.Lock()
				failed++
				mu.Unlock()
				return
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			lat[i] = time.Since(t0)
			mu.Lock()
			defer mu.Unlock()
			if res.StatusCode != 200 {
				failed++
				if res.StatusCode != 409 {
					b.Errorf("run cap-%04d: %d %s", i, res.StatusCode, body)
				}
				return
			}
			configs[i] = string(body)
		}()
	}
	wg.Wait()
	return configs, lat, failed, time.Since(start)
}

// viaSDK mints the pod's projected token for service account sa (as the
// dev stack's /dev/workload-token does for run service accounts) and runs
// the SDK's credential chain with the run's config to the asset role.
func viaSDK(b *testing.B, st *devstack.Stack, sa, cfgText string) error {
	dir := b.TempDir()
	tok, err := st.Issuer.WorkloadToken("domino-compute", sa, sa+"-pod", time.Hour)
	if err != nil {
		return err
	}
	tokenFile, cfgFile := filepath.Join(dir, "token"), filepath.Join(dir, "config")
	if err := os.WriteFile(tokenFile, []byte(tok), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(cfgFile, []byte(strings.ReplaceAll(cfgText, "/var/run/secrets/eks.amazonaws.com/serviceaccount/token", tokenFile)), 0o600); err != nil {
		return err
	}
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"} {
		b.Setenv(k, "")
		os.Unsetenv(k)
	}
	b.Setenv("AWS_ENDPOINT_URL_STS", st.AWSURL)
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithSharedConfigFiles([]string{cfgFile}),
		config.WithSharedCredentialsFiles([]string{filepath.Join(dir, "none")}), config.WithSharedConfigProfile(poolRole), config.WithRegion(devstack.Region))
	if err != nil {
		return err
	}
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		return err
	}
	if want := "arn:aws:sts::" + devstack.AssetsAccount + ":assumed-role/" + poolRole + "/"; !strings.HasPrefix(*id.Arn, want) {
		return fmt.Errorf("caller %s, want %s…", *id.Arn, want)
	}
	return nil
}

// noPods: every run has ended.
type noPods struct{}

func (noPods) Namespace() string               { return "domino-compute" }
func (noPods) Ready(context.Context) error     { return nil }
func (noPods) LivePodsOf(string) []model.Pod   { return nil }
func (noPods) OnPodGone(func(model.Pod)) error { return nil }
func (noPods) Record(model.TrustChange)        {}
func (c *benchClock) Now() time.Time           { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *benchClock) add(d time.Duration)      { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }
func (c *benchClock) start() *benchClock       { c.t = time.Now(); return c }
func newBenchClock() *benchClock               { return (&benchClock{}).start() }

type benchClock struct {
	mu sync.Mutex
	t  time.Time
}

// cleanUp runs the clean-up leader's code over the stack's IAM with no live
// pod: a full reconcile removes every subject from every member, then the
// elastic members, empty past their grace period (the clock is moved, not
// waited for), are deleted. It returns the time until both are done.
func cleanUp(b *testing.B, st *devstack.Stack, pair model.RolePair) (time.Duration, int, int) {
	ctx := context.Background()
	client, err := iam.New(ctx, iam.Options{Region: devstack.Region, Endpoint: st.AWSURL,
		Credentials: credentials.NewStaticCredentialsProvider(st.AccessKeyID, st.SecretKey, "")})
	if err != nil {
		b.Fatal(err)
	}
	clock := newBenchClock()
	w := trust.NewWriter(client, trust.WriterOptions{OIDCProvider: st.OIDCProvider, Now: clock.Now})
	pools := trust.NewPools(trust.PoolOptions{Writer: w, IAM: client, Now: clock.Now, Fresh: time.Second})
	c, err := broker.NewCleaner(broker.CleanerOptions{Pods: noPods{}, Trust: w, Audit: noPods{},
		Roles: broker.ManagedPoolRoles(st.Mappings, pools)})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	removed, err := c.Reconcile(ctx)
	if err != nil {
		b.Fatal(err)
	}
	deleted := 0
	if pair.ProxyPool != nil && pair.ProxyPool.Elastic != nil {
		if _, err := pools.Shrink(ctx, []model.RolePair{pair}); err != nil { // marks the members empty
			b.Fatal(err)
		}
		clock.add(time.Duration(pair.ProxyPool.EmptyGraceSeconds()+1) * time.Second)
		if deleted, err = pools.Shrink(ctx, []model.RolePair{pair}); err != nil {
			b.Fatal(err)
		}
		if left, _ := pools.Members(ctx, pair); len(left) != len(pair.ProxyMembers()) {
			b.Fatalf("elastic members left after clean-up: %v", left)
		}
	}
	return time.Since(start), removed, deleted
}

func capacityTable(rows []capacityRow) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "1,000 concurrent runs of one org, IAM/STS latency %s, trust-policy quota 2,048\n", capacityLatency)
	fmt.Fprintf(&sb, "per-user: the same with per-user service accounts, 1,000 runs of %d users (%d subjects); serve's\n", capacityUsers, capacityUsers)
	fmt.Fprintf(&sb, "  --workloads=kubernetes --per-user-service-accounts --trust-lock=none graph over a fake Kubernetes\n")
	fmt.Fprintf(&sb, "  API (one pod per run), since the dev stack's --workloads=caller refuses per-user service accounts\n")
	line := func(label string, f func(r capacityRow) string) {
		fmt.Fprintf(&sb, "%-28s", label)
		for _, r := range rows {
			fmt.Fprintf(&sb, " %21s", f(r))
		}
		sb.WriteByte('\n')
	}
	line("", func(r capacityRow) string { return r.name })
	line("runs mapped", func(r capacityRow) string { return fmt.Sprint(r.mapped) })
	line("runs refused (409)", func(r capacityRow) string { return fmt.Sprint(r.failed) })
	line("members used", func(r capacityRow) string { return fmt.Sprint(r.members) })
	line("IAM reads (GetRole)", func(r capacityRow) string { return fmt.Sprint(r.reads) })
	line("IAM lists (ListRoles)", func(r capacityRow) string { return fmt.Sprint(r.lists) })
	line("IAM writes (UpdateAssume…)", func(r capacityRow) string { return fmt.Sprint(r.writes) })
	line("IAM creates (CreateRole)", func(r capacityRow) string { return fmt.Sprint(r.new) })
	line("wall time, all maps", func(r capacityRow) string { return r.wall.Round(10 * time.Millisecond).String() })
	line("map latency p50 / p99", func(r capacityRow) string {
		return r.p50.Round(time.Millisecond).String() + " / " + r.p99.Round(time.Millisecond).String()
	})
	line("subjects verified in IAM", func(r capacityRow) string { return fmt.Sprintf("%d of %d", r.verified, r.mapped) })
	line("SDK chain to the asset role", func(r capacityRow) string { return fmt.Sprintf("%d of %d ok", r.sampleOK, r.sampled) })
	line("clean-up: subjects removed", func(r capacityRow) string { return fmt.Sprint(r.removed) })
	line("clean-up: members deleted", func(r capacityRow) string { return fmt.Sprint(r.deleted) })
	line("clean-up time", func(r capacityRow) string { return r.cleanup.Round(10 * time.Millisecond).String() })
	return sb.String()
}
