package policy

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// The hand-built input document must be exactly Input's JSON encoding, the
// documented contract for policy authors. If a field is added to Input or
// sdk.Identity, this test fails until inputValue learns it.
func TestInputValueMatchesJSON(t *testing.T) {
	full := Input{
		Identity: sdk.Identity{
			ID: "u1", Username: "alice", Email: "a@example.com",
			Organizations: []string{"o1", "o2"}, Groups: []string{"g"}, Admin: true,
			Attributes: map[string]string{"k": "v", "x": "y"},
			Expiry:     time.Date(2030, 1, 2, 3, 4, 5, 600, time.FixedZone("x", 3600)),
			Provider:   "corp-sso",
		},
		Workload: model.Workload{RunID: "r", Type: "edge-workload", Namespace: "ns", ServiceAccount: "run-r", Pod: "p",
			Labels: map[string]string{"dominodatalab.com/execution-id": "r"}},
		Request: Request{Method: "POST", Path: "/x", Action: "map", ID: "req"},
	}
	empty := Input{}
	emptySlices := Input{Identity: sdk.Identity{Organizations: []string{}, Groups: []string{}, Attributes: map[string]string{}}}
	for name, in := range map[string]Input{"full": full, "zero": empty, "empty slices": emptySlices, "one org": user("a")} {
		t.Run(name, func(t *testing.T) {
			b, err := json.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			want, err := ast.ValueFromReader(bytes.NewReader(b))
			if err != nil {
				t.Fatal(err)
			}
			if got := inputValue(in); got.Compare(want) != 0 {
				t.Fatalf("input document differs from JSON:\n got %v\nwant %v", got, want)
			}
		})
	}
}
