// Package examples ships example files; DevUsers is the users file that
// `irsa-broker dev` uses when no --identity-file is given.
package examples

import _ "embed"

// DevUsers is examples/dev-users.yaml.
//
//go:embed dev-users.yaml
var DevUsers []byte
