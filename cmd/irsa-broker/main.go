// Command irsa-broker is the IRSA broker: `serve` runs it in a cluster, `dev`
// runs the whole flow on loopback, `awssim` runs the IAM/STS simulator alone.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/hashicorp/go-hclog"

	"github.com/irsa-broker/irsa-broker/internal/awssim"
)

const usage = `irsa-broker: AWS IAM roles for Domino workloads, with no AWS keys in pods.

Usage:
  irsa-broker serve [flags]    run the broker (see 'irsa-broker serve -h')
  irsa-broker dev [flags]      broker + IAM/STS simulator + dev OIDC issuer on loopback
  irsa-broker awssim [flags]   the IAM/STS simulator alone
  irsa-broker plugin NAME      serve a built-in identity provider over the plugin protocol
                               (started by the broker itself; not for direct use)
  irsa-broker version
`

var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "irsa-broker:", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("missing subcommand")
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stderr)
	case "dev":
		return runDev(ctx, args[1:], stdout, stderr)
	case "awssim":
		log := hclog.New(&hclog.LoggerOptions{Name: "awssim", Output: stderr, Level: hclog.Info})
		return awssim.RunCommand(ctx, args[1:], log)
	case "plugin":
		return runPlugin(ctx, args[1:], stderr)
	case "version":
		fmt.Fprintln(stdout, version)
		return nil
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown subcommand %q", args[0])
}

func newLogger(out io.Writer, level, format string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       "irsa-broker",
		Output:     out,
		Level:      hclog.LevelFromString(level),
		JSONFormat: format == "json",
	})
}

// usageOf prints a subcommand's flags and how the environment sets them.
func usageOf(fs *flag.FlagSet, w io.Writer) func() {
	return func() {
		fmt.Fprintf(w, "Usage: irsa-broker %s [flags]\n\nEvery flag can also be set as IRSA_<FLAG> (e.g. --log-level as IRSA_LOG_LEVEL); a flag given on the command line wins.\n\n", fs.Name())
		fs.PrintDefaults()
	}
}
