// Package names lists the identity providers built into the broker without
// importing any of them, so that the plugin host (core/identity) can tell a
// built-in from a third-party binary and stay free of provider code.
// plugins/builtin's tests keep this list equal to its registry.
package names

// The built-in providers, as `irsa-broker plugin NAME` serves them.
const (
	Domino = "domino"
	OIDC   = "oidc"
	Static = "static"
)

// All returns the built-in provider names, sorted.
func All() []string { return []string{Domino, OIDC, Static} }
