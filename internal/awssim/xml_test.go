package awssim

import (
	"flag"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// TestXMLShapes pins the exact wire format of representative responses.
func TestXMLShapes(t *testing.T) {
	created := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	r := &role{name: "acme", path: "/", arn: "arn:aws:iam::946429944765:role/acme", id: "AROAEXAMPLEEXAMPLE1",
		created: created, maxSession: 3600, trustDoc: "{\"Version\": \"2012-10-17\", \"Statement\": []}"}
	tests := []struct {
		name  string
		write func(w *httptest.ResponseRecorder)
	}{
		{"get_role", func(w *httptest.ResponseRecorder) {
			writeResult(w, "req-1", "GetRole", iamNamespace, getRoleResult{Role: r.xml()})
		}},
		{"list_roles", func(w *httptest.ResponseRecorder) {
			writeResult(w, "req-2", "ListRoles", iamNamespace, listRolesResult{IsTruncated: true, Marker: "bWFya2Vy", Roles: []xmlRole{r.xml()}})
		}},
		{"delete_role", func(w *httptest.ResponseRecorder) {
			writeResult(w, "req-3", "DeleteRole", iamNamespace, nil)
		}},
		{"no_such_entity", func(w *httptest.ResponseRecorder) {
			writeError(w, "req-4", iamNamespace, errNoSuchRole("acme"))
		}},
		{"throttling", func(w *httptest.ResponseRecorder) {
			writeError(w, "req-5", stsNamespace, errThrottling())
		}},
		{"assume_role_with_web_identity", func(w *httptest.ResponseRecorder) {
			sess := &session{accessKeyID: "ASIAEXAMPLE", secret: "s", token: "t", account: "946429944765", roleName: "acme",
				roleID: "AROAEXAMPLEEXAMPLE1", sessionName: "pod", expires: created}
			writeResult(w, "req-6", "AssumeRoleWithWebIdentity", stsNamespace, assumeRoleWithWebIdentityResult{
				SubjectFromWebIdentityToken: "system:serviceaccount:ns:sa", Audience: "sts.amazonaws.com",
				AssumedRoleUser: assumedRoleUser(sess), Credentials: sessionCredentials(sess), Provider: "https://oidc.example.com"})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			tc.write(w)
			got := []byte(w.Header().Get("Content-Type") + " " + w.Result().Status + "\n" + w.Body.String() + "\n")
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if string(got) != string(want) {
				t.Fatalf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}
