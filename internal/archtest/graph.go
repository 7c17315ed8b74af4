package archtest

import (
	"sort"
	"strings"
)

// Graph is a module's package graph: every package of the module and
// everything they depend on, linked by the imports of their non-test files.
type Graph struct {
	// Module is the module path; rules name packages relative to it.
	Module string
	// Packages by import path.
	Packages map[string]*Package
}

// Package is what the rules know about one package.
type Package struct {
	Path     string   // import path
	Name     string   // package name
	Standard bool     // part of the standard library
	Imports  []string // direct imports of its non-test Go files
	// TestingFiles are the non-test files that import "testing" (for messages;
	// the rules read Imports).
	TestingFiles []string
}

// rel is path relative to the module ("." for the module's root package), or
// path itself outside the module.
func (g *Graph) rel(path string) string {
	if path == g.Module {
		return "."
	}
	if r, ok := strings.CutPrefix(path, g.Module+"/"); ok {
		return r
	}
	return path
}

// inModule reports whether path is a package of the module.
func (g *Graph) inModule(path string) bool {
	return path == g.Module || strings.HasPrefix(path, g.Module+"/")
}

// under reports whether the module-relative path p is dir or below it.
func under(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// underAny reports whether p is under one of dirs.
func underAny(p string, dirs ...string) bool {
	for _, d := range dirs {
		if under(p, d) {
			return true
		}
	}
	return false
}

// modulePackages are the module's packages, sorted by path.
func (g *Graph) modulePackages() []*Package {
	var out []*Package
	for path, p := range g.Packages {
		if g.inModule(path) {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// chain is a shortest import chain from one package to the first package
// (in breadth-first order, imports sorted) that match accepts, from and the
// match included; nil when there is none. from itself is never a match. The
// standard library is not walked: it imports nothing outside itself.
func (g *Graph) chain(from string, match func(path string) bool) []string {
	parent := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		p := g.Packages[cur]
		if p == nil || (p.Standard && cur != from) {
			continue
		}
		imports := append([]string(nil), p.Imports...)
		sort.Strings(imports)
		for _, imp := range imports {
			if _, seen := parent[imp]; seen {
				continue
			}
			parent[imp] = cur
			if match(imp) {
				var out []string
				for n := imp; n != ""; n = parent[n] {
					out = append(out, n)
				}
				for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
					out[i], out[j] = out[j], out[i]
				}
				return out
			}
			queue = append(queue, imp)
		}
	}
	return nil
}
