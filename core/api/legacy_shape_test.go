package api_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/irsa-broker/irsa-broker/core/config"
	"github.com/irsa-broker/irsa-broker/internal/devstack"
	"github.com/irsa-broker/irsa-broker/internal/devstack/devstacktest"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/*.golden")

type recordedCall struct {
	Note   string          `json:"note"`
	Method string          `json:"method"`
	Path   string          `json:"path"`
	Token  string          `json:"token"`
	Body   json.RawMessage `json:"body"`
}

// replay sends the recorded calls and returns the transcript: each call and
// its answer, JSON indented.
func replay(t *testing.T, base string, calls []recordedCall, query string) (string, []map[string]any) {
	t.Helper()
	var out strings.Builder
	var answers []map[string]any
	for _, c := range calls {
		path := c.Path
		if c.Method == http.MethodGet {
			path += query
		}
		req, _ := http.NewRequest(c.Method, base+path, bytes.NewReader(c.Body))
		req.Header.Set("Authorization", "Bearer "+c.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var v map[string]any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("%s %s: %d %s", c.Method, c.Path, resp.StatusCode, body)
		}
		answers = append(answers, v)
		pretty, _ := json.MarshalIndent(v, "", "  ")
		fmt.Fprintf(&out, "# %s\n%s %s -> %d\n%s\n\n", c.Note, c.Method, c.Path, resp.StatusCode, pretty)
	}
	return out.String(), answers
}

// TestLegacyGetShapesAgainstRecordedCalls replays the calls of the v1.8
// test notebook (testdata/v18-notebook-calls.json) against a broker in each
// shape, compares the transcripts with the golden files, and reads the
// answers the way each kind of client does.
func TestLegacyGetShapesAgainstRecordedCalls(t *testing.T) {
	raw, err := os.ReadFile("testdata/v18-notebook-calls.json")
	if err != nil {
		t.Fatal(err)
	}
	var calls []recordedCall
	if err := json.Unmarshal(raw, &calls); err != nil {
		t.Fatal(err)
	}
	for _, shape := range []string{"seed", "v1.8"} {
		t.Run(shape, func(t *testing.T) {
			// serve's graph with --legacy-get-shape=shape and no mappings
			st := devstacktest.Start(t, devstack.Options{Empty: true})
			base := devstacktest.Broker(t, st, func(cfg *config.Serve) { cfg.LegacyGetShape = shape })
			transcript, answers := replay(t, base, calls, "")
			golden := filepath.Join("testdata", "legacy-gets."+shape+".golden")
			if *updateGolden {
				if err := os.WriteFile(golden, []byte(transcript), 0o644); err != nil {
					t.Fatal(err)
				}
			} else if want, err := os.ReadFile(golden); err != nil || string(want) != transcript {
				t.Errorf("%s differs (go test ./core/api -run LegacyGetShapes -update):\n%s", golden, transcript)
			}
			all := answers[3]["all_role_mappings"].(map[string]any)
			mine := answers[4]["my_role_mappings"]
			switch shape {
			case "seed":
				// Seed clients: a single org is an object, a multi-role org a list
				// (a single pair written as multi-role too); mine keyed by org.
				if _, ok := all["irsa-iamrole-list-bucket"].(map[string]any); !ok {
					t.Errorf("seed: single org is not an object: %v", all["irsa-iamrole-list-bucket"])
				}
				if l, ok := all["irsa-iamrole-update-bucket"].([]any); !ok || len(l) != 1 {
					t.Errorf("seed: a single pair written as multi-role is not a list: %v", all["irsa-iamrole-update-bucket"])
				}
				if m, ok := mine.(map[string]any); !ok || len(m) != 2 {
					t.Errorf("seed: my_role_mappings = %v", mine)
				}
			case "v1.8":
				// The notebook: all_role_mappings[org][0]["iam_role_arn"].
				for org, v := range all {
					l, ok := v.([]any)
					if !ok || len(l) == 0 {
						t.Fatalf("v1.8: %s is not a list: %v", org, v)
					}
					for _, it := range l {
						item := it.(map[string]any)
						if item["domino_org"] != org || item["iam_role_arn"] == nil {
							t.Errorf("v1.8: %s item %v", org, item)
						}
					}
				}
				// for m in my_role_mappings: m["domino_org"], m["iam_role_arn"]
				l, ok := mine.([]any)
				if !ok || len(l) != 3 {
					t.Fatalf("v1.8: my_role_mappings = %v", mine)
				}
				orgs := ""
				for _, it := range l {
					item := it.(map[string]any)
					orgs += fmt.Sprint(item["domino_org"], ",")
					if _, ok := item["update_iam_role_trust_policy"].(bool); !ok {
						t.Errorf("v1.8: flag %v", item)
					}
				}
				if orgs != "irsa-iamrole-list-bucket,irsa-iamrole-read-bucket,irsa-iamrole-read-bucket," {
					t.Errorf("v1.8: my orgs %s", orgs)
				}
			}
			// Whatever the site's shape, ?shape= names one (irsactl asks for seed).
			other := map[string]string{"seed": "v1.8", "v1.8": "seed"}[shape]
			got, _ := replay(t, base, calls[3:], "?shape="+other)
			want, _ := os.ReadFile(filepath.Join("testdata", "legacy-gets."+other+".golden"))
			if !strings.HasSuffix(string(want), got) {
				t.Errorf("?shape=%s on a %s broker:\n%s", other, shape, got)
			}
		})
	}
}
