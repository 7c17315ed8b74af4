// Command irsactl is the admin's tool for irsa-broker: mappings, service
// accounts, identities, dry runs and maps over the broker's API, and the AWS
// identity a workload's SDK chain ends up with (docs/irsactl.md).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], env{getenv: os.Getenv, stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr})
	cancel()
	os.Exit(code)
}

// env is what a run reads and writes besides its arguments (tests pass their own).
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// Exit codes (docs/irsactl.md).
const (
	exitOK          = 0
	exitError       = 1 // anything else: a refused request (400), a redirect, a broker or network failure, failed policy tests
	exitUsage       = 2 // wrong command line or settings (a credential for a plain http:// broker elsewhere)
	exitForbidden   = 3 // 401 or 403: no, bad or insufficient credentials
	exitNotFound    = 4 // 404: no such org, run, service account or route
	exitConflict    = 5 // 409, or the mappings changed since the reviewed dry run
	exitUnavailable = 6 // 502/503 or the broker unreachable: try again later
)

// run executes one command line and returns the process exit code.
func run(ctx context.Context, args []string, e env) int {
	root := newRoot(e)
	root.SetArgs(legacyArgs(args))
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	code := exitCode(err)
	fmt.Fprintln(e.stderr, "irsactl: "+err.Error())
	if code == exitUsage {
		fmt.Fprintln(e.stderr, "Run 'irsactl --help' or 'irsactl COMMAND --help' for usage.")
	}
	return code
}

// exitCode classifies err for the shell.
func exitCode(err error) int {
	var ae *apiError
	var ue *usageError
	var ce *codedError
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &ce):
		return ce.code
	case errors.As(err, &ae):
		return ae.exitCode()
	case errors.As(err, new(*transportError)):
		return exitUnavailable
	case isCobraUsage(err):
		return exitUsage
	}
	return exitError
}

// usageError is a wrong command line (exit 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{msg: fmt.Sprintf(format, a...)} }

// codedError carries its own exit code.
type codedError struct {
	code int
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }
