package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/irsa-broker/irsa-broker/core/broker"
	"github.com/irsa-broker/irsa-broker/core/trust"
)

// poolRuns counts the runs of TestPoolAcrossReplicasLosesNothing in this
// process.
var poolRuns int

// poolMember creates a proxy role whose trust policy leaves room for about
// room subjects of the e2e runs under the account's quota (an unmanaged
// statement pads it), so that a few runs fill it.
func poolMember(t *testing.T, name string, room, subjectLen int) string {
	t.Helper()
	providerARN := "arn:aws:iam::" + eksAccount + ":oidc-provider/" + env.provider
	doc := func(pad string) string {
		return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":%q},`+
			`"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"%s:aud":%q},"StringLike":{"%s:sub":[]}}},`+
			`{"Sid":"Padding","Effect":"Deny","Principal":{"AWS":"arn:aws:iam::%s:root"},"Action":"sts:TagSession","Condition":{"StringEquals":{"aws:RequestTag/pad":%q}}}]}`,
			providerARN, env.provider, audience, env.provider, eksAccount, pad)
	}
	base, err := trust.PolicySize(doc(""))
	if err != nil {
		t.Fatal(err)
	}
	pad := 10240 - base - room*(subjectLen+3) // the e2e account's quota is 10,240
	arn, err := env.sim.CreateRole(eksAccount, name, "/e2e-pool/", doc(strings.Repeat("x", pad)))
	if err != nil {
		t.Fatal(err)
	}
	perm := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":%q}]}`, env.assetARNs[0])
	if err := env.sim.PutRolePolicy(eksAccount, name, "assume-asset", perm); err != nil {
		t.Fatal(err)
	}
	return arn
}

// poolSubjects returns the subjects of a pool member, from the simulator.
func poolSubjects(t testing.TB, name string) []string {
	t.Helper()
	doc, err := env.sim.TrustPolicy(eksAccount, name)
	if err != nil {
		t.Fatal(err)
	}
	d, err := trust.Parse(doc, env.provider)
	if err != nil {
		t.Fatal(err)
	}
	return d.Subjects()
}

// TestPoolAcrossReplicasLosesNothing: an org mapped to a pool of three proxy
// roles, each with room for about 12 runs; three broker replicas; 30 runs,
// each mapped at the same time through all three replicas (the pods of one
// cluster run). Every run gets the same member from every replica, that
// member holds its subject, all three members are used, no subject is
// placed twice and none is lost; /v2/trust shows the runs and their user;
// once the pods are gone, clean-up empties every member.
func TestPoolAcrossReplicasLosesNothing(t *testing.T) {
	poolRuns++ // -count=N: new roles and runs each time
	run := func(i int) string { return fmt.Sprintf("pool%d-%02d", poolRuns, i) }
	names := []string{fmt.Sprintf("e2e-pool%d-1", poolRuns), fmt.Sprintf("e2e-pool%d-2", poolRuns), fmt.Sprintf("e2e-pool%d-3", poolRuns)}
	var members []string
	for _, n := range names {
		members = append(members, poolMember(t, n, 12, len(subject(computeNS, "run-"+run(0)))))
	}
	body := map[string]any{"role_pairs": []any{map[string]any{"iam_role_arn": env.assetARNs[0],
		"proxy_pool": map[string]any{"name": "e2e-pool", "members": members}}}}
	if code, b := call(t, http.MethodPut, env.main.url+"/v2/mappings/org-pool", "admin-token", body); code != http.StatusOK {
		t.Fatalf("put pool mapping: %d %s", code, b)
	}
	defer call(t, http.MethodDelete, env.main.url+"/v2/mappings/org-pool", "admin-token", nil)

	const runs = 30
	var pods []*corev1.Pod
	for i := range runs {
		pods = append(pods, runPod(t, computeNS, run(i), "u-dave"))
	}
	gone := false
	defer func() {
		if !gone {
			for _, p := range pods {
				deletePod(t, p)
			}
		}
	}()
	// Every replica knows every pod before any subject is written: the
	// clean-up leader (elected among them) removes the subjects of pods its
	// cache does not hold, which is not what this test is about. The main
	// broker has seen a run's pod once it previews it (no IAM call); the
	// replicas start after that, their first list holds the pods, and the
	// mapping (their ConfigMap watch has synced when they are ready).
	for i := range runs {
		poll(t, 5*time.Millisecond, "the main broker sees pod "+run(i), func() (bool, error) {
			code, b := call(t, http.MethodPost, env.main.url+"/v2/preview", "dave-token", map[string]string{"run_id": run(i)})
			return code == http.StatusOK && strings.Contains(b, names[0]), nil
		})
	}
	replicas := []*brokerProc{env.main, startTestBroker(t, "pool-replica-2"), startTestBroker(t, "pool-replica-3")}
	for _, a := range []string{"GetRole", "UpdateAssumeRolePolicy"} {
		env.sim.SetLatency(a, 15*time.Millisecond)
		defer env.sim.SetLatency(a, 0)
	}
	configs := make([][]string, runs)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range runs {
		for _, r := range replicas {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cfg := mapSeen(t, r, "dave-token", run(i), "")
				mu.Lock()
				configs[i] = append(configs[i], cfg)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()

	used := map[string]int{}
	for i := range runs {
		sub := subject(computeNS, "run-"+run(i))
		var holders []string
		for _, n := range names {
			if slices.Contains(poolSubjects(t, n), sub) {
				holders = append(holders, n)
			}
		}
		if len(holders) != 1 {
			t.Errorf("%s is held by %v: want exactly one member", sub, holders)
			continue
		}
		for _, cfg := range configs[i] {
			if !strings.Contains(cfg, "role_arn=arn:aws:iam::"+eksAccount+":role/e2e-pool/"+holders[0]+"\n") {
				t.Errorf("a replica answered run %s with a config that does not name %s:\n%s", run(i), holders[0], cfg)
			}
		}
		used[holders[0]]++
	}
	if len(used) != 3 {
		t.Fatalf("members used: %v", used)
	}
	t.Logf("%d runs × %d replicas placed over the pool: %v", runs, len(replicas), used)

	code, b := call(t, http.MethodGet, replicas[1].url+"/v2/trust", "admin-token", nil)
	var st broker.TrustState
	if err := json.Unmarshal([]byte(b), &st); code != http.StatusOK || err != nil {
		t.Fatalf("/v2/trust: %d %s", code, b)
	}
	i := slices.IndexFunc(st.Pools, func(p broker.PoolState) bool { return p.Name == "e2e-pool" })
	if i < 0 || st.Pools[i].Subjects != runs || len(st.Pools[i].Members) != 3 {
		t.Fatalf("/v2/trust: %s", b)
	}
	for _, m := range st.Pools[i].Members {
		for _, s := range m.Subjects {
			if len(s.Runs) != 1 || !slices.Equal(s.Users, []string{"u-dave"}) {
				t.Fatalf("/v2/trust subject %+v: want its run and user", s)
			}
		}
	}

	// The runs end: clean-up (the leader) sweeps every member.
	for _, p := range pods {
		deletePod(t, p)
	}
	gone = true
	eventually(t, "every pool member empty", func() bool {
		for _, n := range names {
			if len(poolSubjects(t, n)) != 0 {
				return false
			}
		}
		return true
	})
}
