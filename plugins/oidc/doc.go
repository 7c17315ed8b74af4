// Package oidc is the identity provider that verifies OIDC/JWT bearer tokens
// locally (github.com/coreos/go-oidc/v3: discovery, JWKS cache and rotation)
// and maps configurable claims to the caller's id, username, organizations
// and admin flag.
package oidc
