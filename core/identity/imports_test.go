package identity

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The host knows providers by name only: none of its non-test files imports
// a provider (plugins/builtin included, which imports them all).
func TestHostImportsNoProvider(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{
		"github.com/irsa-broker/irsa-broker/plugins/sdk":           true,
		"github.com/irsa-broker/irsa-broker/plugins/builtin/names": true,
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		ast, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range ast.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(path, "github.com/irsa-broker/irsa-broker/plugins/") && !allowed[path] {
				t.Errorf("%s imports %s", f, path)
			}
		}
	}
}
