package sdktest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/irsa-broker/irsa-broker/plugins/sdk"
	"github.com/irsa-broker/irsa-broker/plugins/sdk/sdktest"
)

// users is a provider with one user, as an integrator's would be.
type users struct{}

func (users) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "users", Version: "1.0.0"}, nil
}

func (users) Configure(_ context.Context, raw []byte) error {
	if string(raw) != "alice" {
		return fmt.Errorf("%w: only alice is supported", sdk.ErrInvalidConfig)
	}
	return nil
}

func (users) Authenticate(_ context.Context, c sdk.Credentials) (sdk.Identity, error) {
	if c.Token != "t-alice" {
		return sdk.Identity{}, fmt.Errorf("%w: unknown token", sdk.ErrUnauthenticated)
	}
	return sdk.Identity{ID: "u1", Username: "alice", Organizations: []string{"acme"}}, nil
}

// harness is what an integrator hands the suite.
var harness = sdktest.Harness{
	New:            func(*testing.T) sdk.Provider { return users{} },
	Config:         []byte("alice"),
	InvalidConfigs: map[string][]byte{"bob": []byte("bob")},
	Valid: []sdktest.Case{{
		Name:  "alice",
		Creds: sdk.Credentials{Token: "t-alice", Header: sdk.HeaderAuthorization},
		Want:  sdk.Identity{ID: "u1", Username: "alice", Organizations: []string{"acme"}},
	}},
	Invalid: []sdktest.Case{{Name: "upper case", Creds: sdk.Credentials{Token: "T-ALICE"}}},
}

// An integrator runs the suite from a test in their provider's package. Run
// checks the provider in-process and again through the SDK's gRPC shims, as
// the broker calls it. (Run needs the *testing.T of `go test`, so this
// example is compiled, not run; TestExampleHarness runs it.)
func ExampleRun() {
	// provider_test.go:
	TestConformance := func(t *testing.T) {
		sdktest.Run(t, harness)
	}
	_ = TestConformance
}

// TestExampleHarness runs the example's harness, so the example above shows
// a harness that passes.
func TestExampleHarness(t *testing.T) { sdktest.Run(t, harness) }

// Diff is how the suite compares identities: organizations and groups in any
// order, attributes only when the expectation has some.
func ExampleDiff() {
	want := sdk.Identity{ID: "u1", Username: "alice", Organizations: []string{"acme", "beta"}}
	fmt.Printf("%q\n", sdktest.Diff(want, sdk.Identity{ID: "u1", Username: "alice", Organizations: []string{"beta", "acme"}}))
	fmt.Print(sdktest.Diff(want, sdk.Identity{ID: "u1", Username: "bob", Organizations: []string{"acme"}}))
	// Output:
	// ""
	//   Username: got bob, want alice
	//   Organizations: got [acme], want [acme beta]
}
