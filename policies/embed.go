package policies

import "embed"

// FS holds the default policies (grants.rego, authz.rego) and their
// _test.rego files. Test files are never served; they run in `go test` and
// `opa test policies/`.
//
//go:embed *.rego
var FS embed.FS
