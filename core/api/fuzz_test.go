package api_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/irsa-broker/irsa-broker/internal/devstack"
	"github.com/irsa-broker/irsa-broker/internal/devstack/devstacktest"
)

// FuzzHTTP drives the running broker (the dev stack's real HTTP server, the
// real simulator behind it) with arbitrary methods, paths, headers and
// bodies, and checks the invariants of issue 11: no unclassified 5xx, every
// error is the JSON error shape, a 4xx changes neither IAM nor the mappings,
// and the metric series stay bounded.
func FuzzHTTP(f *testing.F) {
	seeds := []struct{ method, path, headers, body string }{
		{"POST", "/map_iam_roles_to_pod_sa", "Authorization: Bearer alice-token", `{"run_id":"run1"}`},
		{"POST", "/map_iam_roles_to_pod_sa", "Authorization: Bearer alice-token", `{"run_id":"run1","RUN_ID":"x"}`},
		{"POST", "/v2/map", "Authorization: Bearer bob-token\nAccept: application/json", `{"run_id":"r","irsa_workload_type":"cluster-worker"}`},
		{"POST", "/update_role_mapping", "Authorization: Bearer admin-token", `{"domino_org":"o","iam_role_arn":"arn:aws:iam::524112250363:role/a","proxy_iam_role_arn":"arn:aws:iam::111111111111:role/x/acme-list-bucket-role"}`},
		{"DELETE", "/delete_role_mapping", "X-Domino-Api-Key: nope", `{"domino_org":"irsa-iamrole-list-bucket"}`},
		{"PUT", "/v2/mappings/..%2f..", "Authorization: Bearer admin-token", `{"role_pairs":[{}]}`},
		{"GET", "/readyz", "", ""},
		{"BREW", "/healthz", "Accept: application/json", ""},
		{"POST", "/service_account", "Authorization: Bearer admin-token", `{"service_account_name":"*"}`},
		{"GET", "/v2/status", "Authorization: Bearer alice-token", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.headers, s.body)
	}
	st := devstacktest.Start(f, devstack.Options{})
	f.Fuzz(func(t *testing.T, method, path, headers, body string) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequest(method, st.BrokerURL+path, strings.NewReader(body))
		if err != nil {
			return // not a request a client can send
		}
		for _, line := range strings.Split(headers, "\n") {
			k, v, ok := strings.Cut(line, ":")
			if ok && validHeader(k, v) {
				req.Header.Add(k, strings.TrimSpace(v))
			}
		}
		req.Host = ""
		writes := st.Sim.Calls()["UpdateAssumeRolePolicy"]
		before, err := st.Mappings.Snapshot(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return // refused by the client or the server's HTTP layer
		}
		b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		res.Body.Close()
		r := resp{status: res.StatusCode, header: res.Header, body: string(b)}

		if r.status >= 400 && method != http.MethodHead {
			if code := r.errorCode(t); code == "internal" {
				t.Fatalf("%s %s: unclassified error %s", method, path, r.body)
			}
		}
		if r.status == http.StatusInternalServerError {
			t.Fatalf("%s %s: 500 %s", method, path, r.body)
		}
		if r.status >= 400 && r.status < 500 {
			if got := st.Sim.Calls()["UpdateAssumeRolePolicy"]; got != writes {
				t.Fatalf("%s %s answered %d but wrote a trust policy", method, path, r.status)
			}
			after, err := st.Mappings.Snapshot(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if after.Revision != before.Revision {
				t.Fatalf("%s %s answered %d but changed the mappings", method, path, r.status)
			}
		}
		families, err := st.Metrics.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		series := 0
		for _, fam := range families {
			series += len(fam.GetMetric())
		}
		if series > 400 {
			t.Fatalf("%d metric series", series)
		}
	})
}

// validHeader keeps header names and values a client can send.
func validHeader(k, v string) bool {
	if k == "" || strings.EqualFold(k, "Host") || strings.EqualFold(k, "Content-Length") || strings.EqualFold(k, "Transfer-Encoding") {
		return false
	}
	for _, c := range k {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, c) {
			return false
		}
	}
	for _, c := range v {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
