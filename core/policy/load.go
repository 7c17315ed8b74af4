package policy

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/irsa-broker/irsa-broker/policies"
)

// The broker's compiler settings live here so that irsactl's `policy test`,
// `eval` and `check` compile exactly as the broker does: Rego v1, the
// capabilities of the OPA version linked in, and type checking against the
// published schemas of input and data.mappings (policies/schema).

// Module is one policy source.
type Module struct {
	Name string // module name: "default/grants.rego" or the file's path
	Base string // file name
	Text string
}

// IsTest reports whether m is a _test.rego file.
func (m Module) IsTest() bool { return strings.HasSuffix(m.Base, "_test.rego") }

// Sources returns the broker's policy: the embedded defaults, where a file
// of dir with the same base name replaces a default and other files add
// modules (*.rego, not recursive; hidden files and non-regular files are
// skipped). With tests, the *_test.rego files of dir come too (the
// defaults' tests do not: they test the defaults, which dir may replace).
// Modules are sorted by name.
func Sources(dir string, tests bool) ([]Module, error) {
	byBase := map[string]Module{}
	defaults, err := fs.Glob(policies.FS, "*.rego")
	if err != nil {
		return nil, fmt.Errorf("list default policies: %w", err)
	}
	for _, name := range defaults {
		if strings.HasSuffix(name, "_test.rego") {
			continue
		}
		b, err := fs.ReadFile(policies.FS, name)
		if err != nil {
			return nil, fmt.Errorf("read default policy %s: %w", name, err)
		}
		byBase[name] = Module{Name: "default/" + name, Base: name, Text: string(b)}
	}
	if dir != "" {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("read policy dir: %w", err)
		}
		for _, ent := range entries {
			name := ent.Name()
			if !strings.HasSuffix(name, ".rego") || strings.HasPrefix(name, ".") || (!tests && strings.HasSuffix(name, "_test.rego")) {
				continue
			}
			path := filepath.Join(dir, name)
			// Stat follows symlinks (ConfigMap volumes are symlinks into ..data).
			if st, err := os.Stat(path); err != nil || !st.Mode().IsRegular() {
				continue
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("read policy: %w", err)
			}
			byBase[name] = Module{Name: path, Base: name, Text: string(b)}
		}
	}
	out := make([]Module, 0, len(byBase))
	for _, m := range byBase {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// ParserOptions are the broker's Rego parser options (Rego v1, METADATA
// annotations read).
func ParserOptions() ast.ParserOptions {
	return ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true}
}

// Parse parses the modules with the broker's options.
func Parse(mods []Module) (map[string]*ast.Module, error) {
	out := make(map[string]*ast.Module, len(mods))
	for _, s := range mods {
		m, err := ast.ParseModuleWithOpts(s.Name, s.Text, ParserOptions())
		if err != nil {
			return nil, fmt.Errorf("parse policy: %w", err)
		}
		out[s.Name] = m
	}
	return out, nil
}

var (
	schemasOnce sync.Once
	schemaSet   *ast.SchemaSet
	schemaErr   error
)

// Schemas returns the published schemas: schema.input (input.json, the
// type of input in every module) and schema.mappings (mappings.json, for
// METADATA annotations on data.mappings).
func Schemas() (*ast.SchemaSet, error) {
	schemasOnce.Do(func() {
		ss := ast.NewSchemaSet()
		for ref, file := range map[string]string{"schema.input": "schema/input.json", "schema.mappings": "schema/mappings.json"} {
			b, err := fs.ReadFile(policies.SchemaFS, file)
			if err != nil {
				schemaErr = fmt.Errorf("read %s: %w", file, err)
				return
			}
			var doc any
			if err := json.Unmarshal(b, &doc); err != nil {
				schemaErr = fmt.Errorf("parse %s: %w", file, err)
				return
			}
			ss.Put(ast.MustParseRef(ref), doc)
			if ref == "schema.input" {
				ss.Put(ast.SchemaRootRef, doc) // the global type of input
			}
		}
		schemaSet = ss
	})
	return schemaSet, schemaErr
}

// NewCompiler returns a compiler with the broker's settings: Rego v1, this
// OPA version's capabilities, and type checks against Schemas, so that a
// reference to an input field the schema does not have (a typo such as
// input.identity.organisations) fails to compile with its line.
func NewCompiler() (*ast.Compiler, error) {
	ss, err := Schemas()
	if err != nil {
		return nil, err
	}
	return ast.NewCompiler().
		WithDefaultRegoVersion(ast.RegoV1).
		WithCapabilities(ast.CapabilitiesForThisVersion()).
		WithSchemas(ss).
		WithUseTypeCheckAnnotations(true), nil
}

// CompileModules compiles mods with NewCompiler's settings.
func CompileModules(mods []Module) (*ast.Compiler, error) {
	parsed, err := Parse(mods)
	if err != nil {
		return nil, err
	}
	compiler, err := NewCompiler()
	if err != nil {
		return nil, err
	}
	if compiler.Compile(parsed); compiler.Failed() {
		return nil, fmt.Errorf("compile policy: %w", compiler.Errors)
	}
	return compiler, nil
}
