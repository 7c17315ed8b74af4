package policies

import "embed"

// FS holds the default policies (grants.rego, authz.rego) and their
// _test.rego files. Test files are never served; they run in `go test` and
// `opa test policies/`.
//
//go:embed *.rego
var FS embed.FS

// SchemaFS holds the JSON Schemas policies are type-checked against:
// schema/input.json (input, applied to every module) and
// schema/mappings.json (the shape of data.mappings, registered as
// schema.mappings for METADATA annotations).
//
//go:embed schema/*.json
var SchemaFS embed.FS
