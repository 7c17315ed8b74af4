package archtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// listed is the part of `go list -json` that Load reads.
type listed struct {
	ImportPath string
	Name       string
	Dir        string
	Standard   bool
	Imports    []string
	GoFiles    []string
	CgoFiles   []string
	Module     *struct {
		Path string
		Main bool
	}
}

// Load builds the Graph of the module whose root is dir: its packages and all
// their dependencies, as `go list -deps -json ./...` reports them (non-test
// files only; the go command is taken from PATH).
func Load(ctx context.Context, dir string) (*Graph, error) {
	cmd := exec.CommandContext(ctx, "go", "list", "-deps", "-json", "./...")
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go list -deps -json ./... in %s: %w\n%s", dir, err, strings.TrimSpace(stderr.String()))
	}
	g := &Graph{Packages: map[string]*Package{}}
	dec := json.NewDecoder(&stdout)
	for {
		var l listed
		if err := dec.Decode(&l); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("decode go list output: %w", err)
		}
		p := &Package{Path: l.ImportPath, Name: l.Name, Standard: l.Standard, Imports: l.Imports}
		if l.Module != nil && l.Module.Main {
			g.Module = l.Module.Path
			if slices.Contains(l.Imports, "testing") {
				files, err := importers(l.Dir, append(l.GoFiles, l.CgoFiles...), "testing")
				if err != nil {
					return nil, err
				}
				p.TestingFiles = files
			}
		}
		g.Packages[p.Path] = p
	}
	if g.Module == "" {
		return nil, fmt.Errorf("go list in %s reported no package of the main module", dir)
	}
	return g, nil
}

// importers returns the files (relative to dir) that import path.
func importers(dir string, files []string, path string) ([]string, error) {
	var out []string
	fset := token.NewFileSet()
	for _, name := range files {
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ImportsOnly)
		if err != nil {
			return nil, fmt.Errorf("parse imports: %w", err)
		}
		for _, imp := range f.Imports {
			if p, err := strconv.Unquote(imp.Path.Value); err == nil && p == path {
				out = append(out, name)
				break
			}
		}
	}
	return out, nil
}
