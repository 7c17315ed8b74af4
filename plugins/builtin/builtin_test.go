package builtin

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/irsa-broker/irsa-broker/plugins/builtin/names"
)

func TestRegistry(t *testing.T) {
	if got := Names(); !slices.Equal(got, []string{"domino", "oidc", "static"}) {
		t.Fatalf("Names = %v", got)
	}
	// The leaf list the plugin host uses names exactly the registry.
	if got := names.All(); !slices.Equal(got, Names()) {
		t.Fatalf("names.All() = %v, registry %v", got, Names())
	}
	for _, name := range Names() {
		p, err := New(name, nil)
		if err != nil {
			t.Fatal(err)
		}
		info, err := p.Info(context.Background())
		if err != nil || info.Name != name {
			t.Fatalf("%s: Info = %+v, %v", name, info, err)
		}
	}
	if _, err := New("ldap", nil); err == nil || !strings.Contains(err.Error(), "domino, oidc, static") {
		t.Fatalf("unknown name: %v", err)
	}
}
