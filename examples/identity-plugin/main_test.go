package main

import (
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/irsa-broker/irsa-broker/plugins/sdk"
	"github.com/irsa-broker/irsa-broker/plugins/sdk/sdktest"
)

// The example passes the same conformance suite as the built-in providers.
func TestConformance(t *testing.T) {
	sdktest.Run(t, sdktest.Harness{
		New: func(*testing.T) sdk.Provider { return &provider{log: hclog.NewNullLogger()} },
		Config: []byte(`users:
  - {token: t-alice, id: u1, username: alice, organizations: [acme]}
  - {token: t-root, id: u0, username: root, organizations: [], admin: true}
`),
		InvalidConfigs: map[string][]byte{
			"missing id": []byte("users:\n  - {token: x, username: y}\n"),
			"unknown":    []byte("userz: []\n"),
		},
		Valid: []sdktest.Case{
			{Name: "alice", Creds: sdk.Credentials{Token: "t-alice", Header: sdk.HeaderAuthorization}, Want: sdk.Identity{ID: "u1", Username: "alice", Organizations: []string{"acme"}}},
			{Name: "root", Creds: sdk.Credentials{Token: "t-root", Header: sdk.HeaderDominoAPIKey}, Want: sdk.Identity{ID: "u0", Username: "root", Admin: true}},
		},
		Invalid: []sdktest.Case{{Name: "demo token is not configured", Creds: sdk.Credentials{Token: "demo-token"}}},
	})
}
