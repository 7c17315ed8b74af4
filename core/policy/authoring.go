package policy

import (
	"fmt"
	"time"

	"github.com/open-policy-agent/opa/v1/tester"
)

// What a policy author runs before shipping (irsactl policy check|test, and
// the cookbook's tests): the broker's compiler over the modules it would
// serve from dir.

// Check compiles the modules the broker would serve from dir, then the same
// with dir's _test.rego files, as the broker compiles them. It returns the
// served modules and how many test modules dir has.
func Check(dir string) (served []Module, tests int, err error) {
	if served, err = Sources(dir, false); err != nil {
		return nil, 0, err
	}
	if _, err := CompileModules(served); err != nil {
		return nil, 0, err
	}
	all, err := Sources(dir, true)
	if err != nil {
		return nil, 0, err
	}
	if _, err := CompileModules(all); err != nil {
		return nil, 0, fmt.Errorf("tests: %w", err)
	}
	return served, len(all) - len(served), nil
}

// TestRunner is OPA's test runner over dir's _test.rego files and the
// modules the broker would serve from dir, with the broker's compiler.
func TestRunner(dir string) (*tester.Runner, error) {
	mods, err := Sources(dir, true)
	if err != nil {
		return nil, err
	}
	parsed, err := Parse(mods)
	if err != nil {
		return nil, err
	}
	compiler, err := NewCompiler()
	if err != nil {
		return nil, err
	}
	return tester.NewRunner().SetCompiler(compiler).SetModules(parsed).SetTimeout(time.Minute), nil
}
