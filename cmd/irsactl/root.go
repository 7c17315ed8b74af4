package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

const rootLong = `irsactl is the admin's tool for irsa-broker: role mappings, service accounts,
identities, dry runs and maps over the broker's API, and the AWS identity a
workload's SDK chain ends up with.

Configure once (see 'irsactl config'): the broker URL, a CA file, and a token
from $IRSA_TOKEN, a token file, $IRSA_API_KEY or, inside a Domino workspace,
Domino's API proxy. Output is a table, or JSON or YAML with -o.

Exit codes: 0 ok, 1 error, 2 usage, 3 unauthenticated or forbidden, 4 not found,
5 conflict (or mappings changed since a reviewed dry run), 6 broker unavailable.
Errors show the broker's code, message and request id.`

const rootExample = `  irsactl config set broker https://irsa-svc.domino-field
  irsactl auth whoami
  irsactl mappings list
  irsactl mappings set acme --asset arn:aws:iam::524112250363:role/acme --proxy arn:aws:iam::946429944765:role/acme
  irsactl mappings export > backup.json && irsactl mappings import backup.json --apply
  irsactl preview --run 64a1b2c3d4e5f60718293a4b
  irsactl decisions --user alice --since 1h
  irsactl trust --subjects
  irsactl whoami -wait 3m      # inside a workload: the AWS identity (same as 'irsactl aws whoami')
  source <(irsactl completion bash)`

func newRoot(e env) *cobra.Command {
	s := &settings{e: e}
	root := &cobra.Command{
		Use:           "irsactl",
		Short:         "The admin's tool for irsa-broker",
		Long:          rootLong,
		Example:       rootExample,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE:          groupRun,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{msg: err.Error()} })
	s.addFlags(root)
	root.AddGroup(
		&cobra.Group{ID: "admin", Title: "Administration:"},
		&cobra.Group{ID: "runs", Title: "Identities and runs:"},
	)
	for _, c := range []*cobra.Command{newMappingsCmd(s), newTrustCmd(s), newSACmd(s), newPolicyCmd(s), newDecisionsCmd(s), newConfigCmd(s)} {
		c.GroupID = "admin"
		root.AddCommand(c)
	}
	for _, c := range []*cobra.Command{newAuthCmd(s), newAWSCmd(), newLegacyWhoamiCmd(), newPreviewCmd(s), newMapCmd(s)} {
		c.GroupID = "runs"
		root.AddCommand(c)
	}
	return root
}

// groupRun is the RunE of a command that only groups subcommands.
func groupRun(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("unknown command %q for %q", args[0], cmd.CommandPath())
	}
	return usagef("%s: missing command\n\n%s", cmd.CommandPath(), cmd.UsageString())
}

// noArgs and exactArgs are cobra's validators with usage errors (exit 2).
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments, got %q", cmd.CommandPath(), args[0])
	}
	return nil
}

func exactArgs(n int, names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			what := fmt.Sprintf("%d argument(s)", n)
			if len(names) > 0 {
				what = strings.Join(names, " ")
			}
			return usagef("%s wants %s, got %d argument(s)", cmd.CommandPath(), what, len(args))
		}
		return nil
	}
}

// isCobraUsage recognises cobra's own command-line errors.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "flag needs an argument", "invalid argument", "required flag", "accepts ", "if any flags in the group"} {
		if strings.HasPrefix(msg, p) || strings.Contains(msg, " "+p) {
			return true
		}
	}
	return false
}

// legacyFlags are the single-dash flags of the irsactl that predates the
// admin commands (Go's flag package); they keep working as they were.
var legacyFlags = map[string][]string{
	"whoami": {"wait", "profile"},
	"map":    {"broker", "run-id", "token"},
}

// legacyArgs rewrites `-flag` to `--flag` for the legacy commands whoami and
// map, so invocations such as `irsactl whoami -wait 3m` (in workload images)
// and `irsactl map -broker URL -run-id ID` work unchanged.
func legacyArgs(args []string) []string {
	if len(args) == 0 {
		return args
	}
	names, ok := legacyFlags[args[0]]
	if !ok {
		return args
	}
	out := append([]string{}, args...)
	for i, a := range out[1:] {
		if a == "--" {
			break
		}
		if !strings.HasPrefix(a, "-") || strings.HasPrefix(a, "--") {
			continue
		}
		name, _, _ := strings.Cut(a[1:], "=")
		for _, n := range names {
			if name == n {
				out[i+1] = "-" + a
			}
		}
	}
	return out
}
