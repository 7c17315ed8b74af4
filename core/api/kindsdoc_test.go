package api

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/irsa-broker/irsa-broker/core/model"
)

// TestKindsTableInLayoutDoc: the table of error kinds in
// docs/design/layout.md has one row per model.Kind with the status and
// Retry-After that httpStatus answers, and no other rows.
func TestKindsTableInLayoutDoc(t *testing.T) {
	b, err := os.ReadFile("../../docs/design/layout.md")
	if err != nil {
		t.Fatal(err)
	}
	const header = "| kind | status | Retry-After |"
	_, table, ok := strings.Cut(string(b), header+"\n|---|---|---|\n")
	if !ok {
		t.Fatalf("docs/design/layout.md has no table %q", header)
	}
	documented := map[string]string{} // kind → "| status | Retry-After |"
	for _, line := range strings.Split(table, "\n") {
		if !strings.HasPrefix(line, "|") {
			break
		}
		kind, rest, _ := strings.Cut(strings.TrimPrefix(line, "| "), " |")
		documented[kind] = strings.TrimSpace(rest)
	}
	n := 0
	for k := model.Kind(0); !strings.HasPrefix(k.String(), "kind("); k++ {
		n++
		name := strings.ReplaceAll(k.String(), "_", " ")
		status, retry := httpStatus(k)
		want := fmt.Sprintf("%d | none |", status)
		if retry > 0 {
			want = fmt.Sprintf("%d | %d s |", status, retry)
		}
		got, ok := documented[name]
		switch {
		case !ok:
			t.Errorf("docs/design/layout.md: no row for the kind %q; want | %s | %s", name, name, want)
		case got != want:
			t.Errorf("docs/design/layout.md: | %s | %s; want | %s | %s", name, got, name, want)
		}
		delete(documented, name)
	}
	if n < 11 {
		t.Errorf("only %d kinds", n)
	}
	for name := range documented {
		t.Errorf("docs/design/layout.md: a row for %q, which is not a model.Kind", name)
	}
}
