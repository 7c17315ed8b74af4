package sdk_test

import (
	"context"
	"fmt"

	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// tokens is a provider in a few lines: a fixed token table.
type tokens map[string]sdk.Identity

func (tokens) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "tokens", Version: "1.0.0"}, nil
}

func (tokens) Configure(context.Context, []byte) error { return nil }

func (t tokens) Authenticate(_ context.Context, c sdk.Credentials) (sdk.Identity, error) {
	id, ok := t[c.Token]
	if !ok {
		// Wrap the sentinel; never put the token into the message.
		return sdk.Identity{}, fmt.Errorf("%w: unknown token", sdk.ErrUnauthenticated)
	}
	id.Organizations = append([]string{}, id.Organizations...)
	return id, nil
}

// A plugin's main serves its provider; the broker starts the binary and
// talks to it over gRPC. (Serve blocks, so this example is not run.)
func ExampleServe() {
	sdk.Serve(tokens{"t-alice": {ID: "u1", Username: "alice", Organizations: []string{"acme"}}})
}

// A provider answers with an identity or an error wrapping one of the SDK's
// sentinels; errors.Is holds on the broker's side of the wire too.
func ExampleProvider() {
	p := tokens{"t-alice": {ID: "u1", Username: "alice", Organizations: []string{"acme"}}}
	ctx := context.Background()
	id, err := p.Authenticate(ctx, sdk.Credentials{Token: "t-alice", Header: sdk.HeaderAuthorization})
	fmt.Println(id.Username, id.Organizations, err)
	_, err = p.Authenticate(ctx, sdk.Credentials{Token: "t-mallory", Header: sdk.HeaderAuthorization})
	fmt.Println(err)
	// Output:
	// alice [acme] <nil>
	// unauthenticated: unknown token
}
