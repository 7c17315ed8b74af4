package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/spf13/cobra"

	"github.com/irsa-broker/irsa-broker/core/api"
	"github.com/irsa-broker/irsa-broker/core/broker"
	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/core/policy"
	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// adminActions are the actions the broker asks data.irsa.authz.allow about.
var adminActions = []string{
	broker.ActionMappingRead, broker.ActionMappingWrite, broker.ActionMappingDelete,
	broker.ActionServiceAccountWrite, broker.ActionServiceAccountDelete, broker.ActionStatusRead, api.ActionDecisionRead,
	broker.ActionMapForeignWorkload,
}

func newPolicyCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Test, evaluate and type-check Rego policies offline, as the broker compiles them",
		Long: `Work on a policy directory (what the broker's --policy-dir holds) without a broker.
Every command compiles as the broker does: its embedded defaults, replaced by a file
of DIR with the same name (grants.rego, authz.rego) and extended by the others, with
the broker's OPA version, capabilities and input schema (policies/schema/input.json).`,
		RunE: groupRun,
	}
	cmd.AddCommand(newPolicyTest(), newPolicyCheck(s), newPolicyEval(s))
	return cmd
}

func newPolicyCheck(s *settings) *cobra.Command {
	return &cobra.Command{
		Use:   "check DIR",
		Short: "Compile DIR's policies (tests included) and type-check them against the input schema",
		Long: `Compile the policies in DIR as the broker would load them, and their _test.rego
files, and type-check every reference to input against policies/schema/input.json.
A field the schema does not have (input.identity.organisations) is an error with its
file and line; the broker refuses such a policy at start and at reload the same way.`,
		Example: `  irsactl policy check ./policies
  irsactl policy check examples/policies -o json`,
		Args: exactArgs(1, "DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := s.format()
			if err != nil {
				return err
			}
			served, tests, err := policy.Check(args[0])
			if err != nil {
				return err
			}
			var names []string
			for _, m := range served {
				names = append(names, m.Name)
			}
			return emit(cmd.OutOrStdout(), format, map[string]any{"ok": true, "modules": names, "test_modules": tests}, func(t *tabwriter.Writer) {
				fmt.Fprintf(t, "ok: %d module(s) served (%s), %d test module(s)\n", len(names), strings.Join(names, ", "), tests)
			})
		},
	}
}

func newPolicyTest() *cobra.Command {
	var (
		verbose bool
		run     string
	)
	cmd := &cobra.Command{
		Use:   "test DIR",
		Short: "Run DIR's _test.rego files against DIR's policies and the broker's defaults",
		Long: `Run the _test.rego files of DIR (like 'opa test'), with the modules the broker
would serve from DIR: its embedded defaults, replaced or extended by DIR's files. The
compiler is the broker's: a test that passes here decides the same when served.
Exit code 1 when a test fails.`,
		Example: `  irsactl policy test ./policies
  irsactl policy test examples/policies -v --run deny`,
		Args: exactArgs(1, "DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return policyTest(cmd.Context(), cmd.OutOrStdout(), args[0], run, verbose)
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "print every test, not only failures")
	cmd.Flags().StringVar(&run, "run", "", "run only the tests whose name matches this regular expression")
	return cmd
}

func policyTest(ctx context.Context, w io.Writer, dir, run string, verbose bool) error {
	r, err := policy.TestRunner(dir)
	if err != nil {
		return err
	}
	if run != "" {
		if _, err := regexp.Compile(run); err != nil {
			return usagef("--run: %v", err)
		}
		r = r.Filter(run)
	}
	ch, err := r.RunTests(ctx, nil)
	if err != nil {
		return err
	}
	pass, fail := 0, 0
	for res := range ch {
		switch {
		case res.Skip:
			if verbose {
				fmt.Fprintf(w, "SKIP %s.%s\n", res.Package, res.Name)
			}
			continue
		case res.Error != nil:
			fail++
			fmt.Fprintf(w, "ERROR %s.%s (%s): %v\n", res.Package, res.Name, res.Location, res.Error)
		case res.Fail:
			fail++
			fmt.Fprintf(w, "FAIL %s.%s (%s)\n", res.Package, res.Name, res.Location)
		default:
			pass++
			if verbose {
				fmt.Fprintf(w, "PASS %s.%s\n", res.Package, res.Name)
			}
		}
	}
	if pass+fail == 0 {
		return fmt.Errorf("%s: no test ran (no _test.rego file, or --run matched none)", dir)
	}
	fmt.Fprintf(w, "%d passed, %d failed\n", pass, fail)
	if fail > 0 {
		return fmt.Errorf("%d Rego test(s) failed", fail)
	}
	return nil
}

// evalResult is what `policy eval` prints.
type evalResult struct {
	PolicyRevision string          `json:"policy_revision"`
	Input          policy.Input    `json:"input"`
	Grants         []model.Grant   `json:"grants"`
	Allow          map[string]bool `json:"allow"`
	Mappings       string          `json:"mappings"`
}

func newPolicyEval(s *settings) *cobra.Command {
	var (
		id, user, runID, wt, ns, mappingsFile string
		orgs, groups, actions                 []string
		attrs, labels                         map[string]string
		admin, fromBroker, explain            bool
		decisionID                            string
	)
	cmd := &cobra.Command{
		Use:   "eval DIR --user NAME [--orgs A,B] [--run ID] [--mappings FILE|--from-broker] [--explain]",
		Short: "What grants and admin decisions an identity would get from DIR's policies",
		Long: `Evaluate the broker's two queries with DIR's policies for an identity you describe:
data.irsa.grants.grants (the role pairs; as for a map with --run, else as for
/my_role_mappings) and data.irsa.authz.allow for each admin action.

data.mappings comes from --mappings FILE (any format 'mappings import' reads), from
the configured broker with --from-broker (admin), or is empty.

--explain prints OPA's trace of the grants decision, trimmed to DIR's modules (the
defaults' when DIR replaces none), to see which rules fired and which did not.

--decision ID replays a decision the broker made (see 'irsactl decisions'): its
logged input, evaluated with DIR's policies and the mappings of --from-broker (the
mappings now) or --mappings FILE, beside what the broker decided then. Input fields
the log erased as credentials are not part of the replay.`,
		Example: `  irsactl policy eval ./policies --user alice --orgs data-science --run run1 --type cluster-worker \
      --mappings mappings-backup.yaml
  irsactl policy eval ./policies --decision 4f3c2a1b0d9e8f7a --from-broker --explain
  irsactl policy eval ./policies --user bob --groups irsa-mapping-editors --explain --from-broker`,
		Args: exactArgs(1, "DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			format, err := s.format()
			if err != nil {
				return err
			}
			if mappingsFile != "" && fromBroker {
				return usagef("give --mappings or --from-broker, not both")
			}
			if decisionID != "" {
				for _, name := range []string{"user", "id", "orgs", "groups", "admin", "attr", "run", "type", "namespace", "label", "action"} {
					if cmd.Flags().Changed(name) {
						return usagef("--decision replays the logged input: --%s does not go with it", name)
					}
				}
				return replayDecision(ctx, cmd.OutOrStdout(), s, format, args[0], decisionID, mappingsFile, fromBroker, explain)
			}
			if user == "" {
				return usagef("--user is required (or --decision ID)")
			}
			in := policy.Input{
				Identity: sdk.Identity{ID: id, Username: user, Organizations: orgs, Groups: groups, Admin: admin, Attributes: attrs},
				Request:  policy.Request{Method: "GET", Path: brokerapi.PathMyRoleMappings, Action: "my_mappings"},
			}
			if in.Identity.ID == "" {
				in.Identity.ID = user
			}
			if in.Identity.Organizations == nil {
				in.Identity.Organizations = []string{}
			}
			if runID != "" {
				req, err := validRun(runID, wt)
				if err != nil {
					return err
				}
				in.Workload = model.Workload{RunID: req.RunID, Type: req.WorkloadType, Namespace: ns, ServiceAccount: brokerapi.RunPrefix + req.RunID, Labels: labels}
				in.Request = policy.Request{Method: "POST", Path: brokerapi.PathMap, Action: "map"}
			}
			snap, source, err := loadMappings(ctx, s, mappingsFile, fromBroker)
			if err != nil {
				return err
			}
			e, err := policy.New(ctx, policy.Options{PolicyDir: args[0]})
			if err != nil {
				return err
			}
			d, err := e.Grants(ctx, in, snap)
			if err != nil {
				return err
			}
			res := evalResult{PolicyRevision: d.Revision, Input: in, Grants: d.Grants, Allow: map[string]bool{}, Mappings: source}
			for _, a := range actions {
				ain := in
				ain.Request = policy.Request{Method: "POST", Action: a}
				ok, err := e.Allow(ctx, ain)
				if err != nil {
					return err
				}
				res.Allow[a] = ok
			}
			if err := emit(cmd.OutOrStdout(), format, res, func(t *tabwriter.Writer) {
				row(t, "ORG", "ASSET ROLE", "PROXY ROLE", "TRUST UPDATE")
				for _, g := range d.Grants {
					row(t, g.Org, g.IAMRoleARN, g.ProxyIAMRoleARN, yesNo(g.UpdateTrustPolicy))
				}
				if len(d.Grants) == 0 {
					row(t, "(no grants)", "", "", "")
				}
				t.Flush()
				fmt.Fprintln(t)
				row(t, "ACTION", "ALLOWED")
				for _, a := range actions {
					row(t, a, yesNo(res.Allow[a]))
				}
				t.Flush()
				fmt.Fprintf(t, "\npolicy revision %s; mappings: %s\n", d.Revision, source)
			}); err != nil {
				return err
			}
			if explain {
				return explainQuery(ctx, cmd.OutOrStdout(), e, args[0], policy.GrantsQuery, in, snap)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&user, "user", "", "username (input.identity.username)")
	f.StringVar(&id, "id", "", "user id (input.identity.id; default: the username)")
	f.StringSliceVar(&orgs, "orgs", nil, "organizations, comma-separated")
	f.StringSliceVar(&groups, "groups", nil, "groups, comma-separated")
	f.BoolVar(&admin, "admin", false, "the identity provider's admin flag")
	f.StringToStringVar(&attrs, "attr", nil, "identity attributes, k=v,...")
	f.StringVar(&runID, "run", "", "evaluate as a map of this run (input.workload)")
	f.StringVar(&wt, "type", "", "workload type with --run: "+strings.Join(brokerapi.WorkloadTypes, ", "))
	f.StringVar(&ns, "namespace", "domino-compute", "workload namespace with --run")
	f.StringToStringVar(&labels, "label", nil, "pod labels with --run, k=v,...")
	f.StringSliceVar(&actions, "action", adminActions, "admin actions to ask data.irsa.authz.allow about")
	f.StringVar(&mappingsFile, "mappings", "", "file of mappings for data.mappings")
	f.BoolVar(&fromBroker, "from-broker", false, "read data.mappings from the configured broker (admin)")
	f.BoolVar(&explain, "explain", false, "print the trace of the grants decision (of the replayed one with --decision), trimmed to DIR's modules")
	f.StringVar(&decisionID, "decision", "", "replay this decision of the broker (irsactl decisions) with DIR's policies: its logged input, the mappings of --from-broker or --mappings")
	_ = cmd.RegisterFlagCompletionFunc("type", cobra.FixedCompletions(brokerapi.WorkloadTypes, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// explainQuery prints OPA's trace of query, keeping the events located in
// the author's modules (DIR's files), or the defaults' when DIR replaces none
// of the modules that ran.
func explainQuery(ctx context.Context, w io.Writer, e *policy.Engine, dir, query string, in policy.Input, snap model.Snapshot) error {
	events, err := e.Explain(ctx, query, in, snap)
	if err != nil {
		return err
	}
	mods, err := policy.Sources(dir, false)
	if err != nil {
		return err
	}
	author := map[string]bool{}
	for _, m := range mods {
		if !strings.HasPrefix(m.Name, "default/") {
			author[m.Name] = true
		}
	}
	keep := func(evs []*topdown.Event, files map[string]bool) []*topdown.Event {
		var out []*topdown.Event
		for _, ev := range evs {
			if ev.Location != nil && files[ev.Location.File] {
				out = append(out, ev)
			}
		}
		return out
	}
	trimmed := keep(events, author)
	which := "DIR's modules"
	if len(trimmed) == 0 {
		defaults := map[string]bool{}
		for _, m := range mods {
			defaults[m.Name] = !author[m.Name]
		}
		trimmed, which = keep(events, defaults), "the default modules (DIR's did not run)"
	}
	fmt.Fprintf(w, "\nexplain: %s, trace of %s\n", which, query)
	topdown.PrettyTraceWithLocation(w, trimmed)
	return nil
}

// loadMappings is data.mappings for eval: from a file, from the broker, or
// empty. source says where they came from.
func loadMappings(ctx context.Context, s *settings, file string, fromBroker bool) (model.Snapshot, string, error) {
	snap := model.Snapshot{Mappings: map[string]model.Mapping{}}
	switch {
	case file != "":
		data, err := os.ReadFile(file)
		if err != nil {
			return snap, "", err
		}
		ms, _, err := parseMappingsFile(data)
		if err != nil {
			return snap, "", fmt.Errorf("%s: %w", file, err)
		}
		for _, m := range ms {
			snap.Mappings[m.Org] = m
		}
		return snap, file, nil
	case fromBroker:
		c, err := s.client(ctx)
		if err != nil {
			return snap, "", err
		}
		st, err := fetchState(ctx, c)
		if err != nil {
			return snap, "", err
		}
		snap.Mappings, snap.Revision = st.byOrg, st.revision
		return snap, c.base + " (revision " + st.revision + ")", nil
	}
	return snap, "none (data.mappings is empty)", nil
}

// replaySide is one side of a replay: what was decided, with which revisions.
type replaySide struct {
	PolicyRevision  string        `json:"policy_revision"`
	MappingRevision string        `json:"mapping_revision,omitempty"`
	Grants          []model.Grant `json:"grants,omitempty"`
	Allowed         *bool         `json:"allowed,omitempty"`
	Error           string        `json:"error,omitempty"`
}

func (r replaySide) summary() string {
	switch {
	case r.Error != "":
		return "error: " + r.Error
	case r.Allowed != nil && *r.Allowed:
		return "allowed"
	case r.Allowed != nil:
		return "denied"
	}
	return grantsSummary(r.Grants)
}

// replayResult is what `policy eval --decision` prints.
type replayResult struct {
	DecisionID string       `json:"decision_id"`
	Path       string       `json:"path"`
	Input      policy.Input `json:"input"`
	Erased     []string     `json:"erased,omitempty"`
	Logged     replaySide   `json:"logged"`
	Replayed   replaySide   `json:"replayed"`
	Same       bool         `json:"same"`
	Mappings   string       `json:"mappings"`
}

// replayDecision evaluates a logged decision's input with DIR's policies
// and compares the result with the logged one.
func replayDecision(ctx context.Context, w io.Writer, s *settings, format, dir, id, mappingsFile string, fromBroker, explain bool) error {
	c, err := s.client(ctx)
	if err != nil {
		return err
	}
	ev, err := fetchDecision(ctx, c, id)
	if err != nil {
		return err
	}
	if ev.Input == nil {
		return fmt.Errorf("decision %s has no input to replay", id)
	}
	query := policy.GrantsQuery
	switch ev.Path {
	case policy.GrantsPath:
		if mappingsFile == "" && !fromBroker {
			return usagef("decision %s is a grants decision: give --from-broker (the mappings now) or --mappings FILE", id)
		}
	case policy.AllowPath:
		query = policy.AllowQuery
	default:
		return fmt.Errorf("decision %s: unknown path %q", id, ev.Path)
	}
	snap, source, err := loadMappings(ctx, s, mappingsFile, fromBroker)
	if err != nil {
		return err
	}
	e, err := policy.New(ctx, policy.Options{PolicyDir: dir})
	if err != nil {
		return err
	}
	in := *ev.Input
	res := replayResult{DecisionID: ev.DecisionID, Path: ev.Path, Input: in, Erased: ev.Erased, Mappings: source,
		Logged:   replaySide{PolicyRevision: ev.Revision, MappingRevision: ev.MappingRevision()},
		Replayed: replaySide{PolicyRevision: e.Revision()}}
	if ev.Error != nil {
		res.Logged.Error = ev.Error.Message
	}
	if query == policy.GrantsQuery {
		res.Replayed.MappingRevision = snap.Revision
		if ev.Error == nil {
			if res.Logged.Grants, err = loggedGrants(ev); err != nil {
				return err
			}
		}
		d, err := e.Grants(ctx, in, snap)
		if err != nil {
			res.Replayed.Error = err.Error()
		}
		res.Replayed.Grants = d.Grants
		a, _ := json.Marshal(res.Logged.Grants)
		b, _ := json.Marshal(res.Replayed.Grants)
		res.Same = res.Logged.Error == "" && res.Replayed.Error == "" && string(a) == string(b)
	} else {
		if ev.Error == nil {
			logged, _ := ev.Result.(bool)
			res.Logged.Allowed = &logged
		}
		ok, err := e.Allow(ctx, in)
		if err != nil {
			res.Replayed.Error = err.Error()
		} else {
			res.Replayed.Allowed = &ok
		}
		res.Same = res.Logged.Allowed != nil && res.Replayed.Allowed != nil && *res.Logged.Allowed == *res.Replayed.Allowed
	}
	if err := emit(w, format, res, func(t *tabwriter.Writer) {
		fmt.Fprintf(t, "decision %s (%s) of %s, %s", ev.DecisionID, ev.Path, orDash(in.Identity.Username), orDash(in.Request.Action))
		if in.Workload.RunID != "" {
			fmt.Fprintf(t, " of run %s", in.Workload.RunID)
		}
		fmt.Fprintf(t, ", at %s\n", ev.Timestamp.UTC().Format(time.RFC3339))
		row(t, "", "LOGGED (broker)", "REPLAYED ("+dir+")")
		row(t, "policy revision", orDash(res.Logged.PolicyRevision), res.Replayed.PolicyRevision)
		if query == policy.GrantsQuery {
			row(t, "mapping revision", orDash(res.Logged.MappingRevision), orDash(res.Replayed.MappingRevision))
		}
		row(t, "result", res.Logged.summary(), res.Replayed.summary())
		t.Flush()
		if len(ev.Erased) > 0 {
			fmt.Fprintf(t, "erased from the log, so not replayed: %s\n", strings.Join(ev.Erased, ", "))
		}
		if res.Same {
			fmt.Fprintf(t, "same result; mappings: %s\n", source)
		} else {
			fmt.Fprintf(t, "DIFFERENT result; mappings: %s\n", source)
		}
	}); err != nil {
		return err
	}
	if explain {
		return explainQuery(ctx, w, e, dir, query, in, snap)
	}
	return nil
}
