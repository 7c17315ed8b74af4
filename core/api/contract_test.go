package api

import (
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

// TestRoutesAreTheWireContract: every path the router serves is one of
// internal/brokerapi's Path constants (followed by URL parameters), so
// irsactl and the sidecar name the routes with the constants the broker
// serves, and a route cannot be added without its client seeing it.
func TestRoutesAreTheWireContract(t *testing.T) {
	contract := brokerapiPaths(t)
	if len(contract) < 15 {
		t.Fatalf("only %d Path constants found in internal/brokerapi: %v", len(contract), contract)
	}
	params := regexp.MustCompile(`(/\{[^}]+\})+$`)
	var outside []string
	err := chi.Walk(NewHandler(Options{}).(chi.Routes), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if p := params.ReplaceAllString(strings.TrimSuffix(route, "/"), ""); !contract[p] {
			outside = append(outside, method+" "+route)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(outside) > 0 {
		t.Errorf("routes whose path is not a constant of internal/brokerapi (declare it there, next to the others): %v", outside)
	}
}

// brokerapiPaths evaluates the constants named Path* of internal/brokerapi
// from its source: string literals and sums of them and of other constants.
func brokerapiPaths(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob("../../internal/brokerapi/*.go")
	if err != nil {
		t.Fatal(err)
	}
	exprs := map[string]ast.Expr{}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.CONST {
				for _, s := range g.Specs {
					vs := s.(*ast.ValueSpec)
					for i, n := range vs.Names {
						if i < len(vs.Values) {
							exprs[n.Name] = vs.Values[i]
						}
					}
				}
			}
		}
	}
	var eval func(ast.Expr) (string, bool)
	eval = func(e ast.Expr) (string, bool) {
		switch e := e.(type) {
		case *ast.BasicLit:
			if s, err := strconv.Unquote(e.Value); e.Kind == token.STRING && err == nil {
				return s, true
			}
		case *ast.Ident:
			if x, ok := exprs[e.Name]; ok {
				return eval(x)
			}
		case *ast.ParenExpr:
			return eval(e.X)
		case *ast.BinaryExpr:
			x, okx := eval(e.X)
			y, oky := eval(e.Y)
			return x + y, e.Op == token.ADD && okx && oky
		}
		return "", false
	}
	out := map[string]bool{}
	for name, e := range exprs {
		if !strings.HasPrefix(name, "Path") {
			continue
		}
		v, ok := eval(e)
		if !ok || !strings.HasPrefix(v, "/") {
			t.Fatalf("brokerapi.%s: cannot evaluate it to a path", name)
		}
		out[v] = true
	}
	return out
}
