package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
)

func newMappingsCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "mappings",
		Aliases: []string{"mapping", "m"},
		Short:   "List, show, set, delete, export and import org → role mappings",
		RunE:    groupRun,
	}
	cmd.AddCommand(newMappingsList(s), newMappingsGet(s), newMappingsSet(s), newMappingsDelete(s),
		newMappingsExport(s), newMappingsImport(s))
	return cmd
}

// completeOrgs completes an org name from the broker's mappings.
func (s *settings) completeOrgs(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	c, err := s.client(cmd.Context())
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	st, err := fetchState(cmd.Context(), c)
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	return st.orgs(), cobra.ShellCompDirectiveNoFileComp
}

// state is the broker's mappings: /v2's list with its revision, and the
// legacy shape (Multi) from GET /role_mappings.
type state struct {
	revision string
	byOrg    map[string]model.Mapping
}

func (st state) orgs() []string {
	orgs := make([]string, 0, len(st.byOrg))
	for o := range st.byOrg {
		orgs = append(orgs, o)
	}
	slices.Sort(orgs)
	return orgs
}

func (st state) sorted() []model.Mapping {
	out := make([]model.Mapping, 0, len(st.byOrg))
	for _, o := range st.orgs() {
		out = append(out, st.byOrg[o])
	}
	return out
}

func fetchState(ctx context.Context, c *client) (state, error) {
	var v2 struct {
		Mappings []mappingV2 `json:"mappings"`
		Revision string      `json:"revision"`
	}
	if err := c.do(ctx, http.MethodGet, brokerapi.PathV2Mappings, nil, &v2); err != nil {
		return state{}, err
	}
	var legacy struct {
		All map[string]json.RawMessage `json:"all_role_mappings"`
	}
	// ?shape=seed: the shape that tells which orgs are lists, whatever the
	// site serves its v1.8 clients (--legacy-get-shape); brokers before the
	// parameter ignore it and answer in that shape anyway.
	if err := c.do(ctx, http.MethodGet, brokerapi.PathRoleMappings+"?shape=seed", nil, &legacy); err != nil {
		return state{}, err
	}
	st := state{revision: v2.Revision, byOrg: make(map[string]model.Mapping, len(v2.Mappings))}
	for _, m := range v2.Mappings {
		raw := strings.TrimSpace(string(legacy.All[m.Org]))
		st.byOrg[m.Org] = model.Mapping{Org: m.Org, Pairs: m.RolePairs, Multi: len(m.RolePairs) != 1 || strings.HasPrefix(raw, "[")}
	}
	return st, nil
}

func mappingsTable(t *tabwriter.Writer, ms []model.Mapping) {
	row(t, "ORG", "ASSET ROLE", "PROXY ROLE", "TRUST UPDATE")
	for _, m := range ms {
		for _, p := range m.Pairs {
			row(t, m.Org, p.IAMRoleARN, proxySide(p), yesNo(p.UpdateTrustPolicy))
		}
	}
}

// proxySide shows a pair's proxy role, or its pool: name, members (role
// names) and, for an elastic pool, its template.
func proxySide(p model.RolePair) string {
	if p.ProxyPool == nil {
		return p.ProxyIAMRoleARN
	}
	names := make([]string, 0, len(p.ProxyPool.Members))
	for _, m := range p.ProxyPool.Members {
		names = append(names, roleName(m))
	}
	out := fmt.Sprintf("pool %s: %s", p.PoolName(), strings.Join(names, ", "))
	if e := p.ProxyPool.Elastic; e != nil {
		out += fmt.Sprintf(" (elastic from %s under %s)", roleName(e.TemplateRoleARN), e.Path)
	}
	return out
}

func v2File(ms []model.Mapping, rev string) mappingsFileV2 {
	f := mappingsFileV2{Mappings: make([]mappingV2, 0, len(ms)), Revision: rev}
	for _, m := range ms {
		f.Mappings = append(f.Mappings, toV2(m))
	}
	return f
}

func newMappingsList(s *settings) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "Every org's role pairs (admin)",
		Long:    "Every mapping, sorted by org, one row per role pair (GET /v2/mappings).",
		Example: `  irsactl mappings list
  irsactl mappings list -o yaml`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, format, err := s.clientAndFormat(cmd.Context())
			if err != nil {
				return err
			}
			st, err := fetchState(cmd.Context(), c)
			if err != nil {
				return err
			}
			ms := st.sorted()
			return emit(cmd.OutOrStdout(), format, v2File(ms, st.revision), func(t *tabwriter.Writer) { mappingsTable(t, ms) })
		},
	}
}

func newMappingsGet(s *settings) *cobra.Command {
	return &cobra.Command{
		Use:               "get ORG",
		Short:             "One org's role pairs (admin)",
		Long:              "One org's mapping (GET /v2/mappings/ORG); exit code 4 when the org has none.",
		Example:           "  irsactl mappings get irsa-iamrole-list-bucket\n  irsactl mappings get acme -o json",
		Args:              exactArgs(1, "ORG"),
		ValidArgsFunction: s.completeOrgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, format, err := s.clientAndFormat(cmd.Context())
			if err != nil {
				return err
			}
			var m mappingV2
			if err := c.do(cmd.Context(), http.MethodGet, brokerapi.PathV2Mappings+"/"+url.PathEscape(args[0]), nil, &m); err != nil {
				return err
			}
			return emit(cmd.OutOrStdout(), format, m, func(t *tabwriter.Writer) {
				mappingsTable(t, []model.Mapping{{Org: m.Org, Pairs: m.RolePairs}})
			})
		},
	}
}

// putMapping writes m through the legacy routes, which keep the legacy
// shape: one pair not Multi → update_role_mapping, else update_multirole_mapping.
func putMapping(ctx context.Context, c *client, m model.Mapping) error {
	if !m.Multi && len(m.Pairs) == 1 {
		p := m.Pairs[0]
		body := map[string]any{
			"domino_org": m.Org, "iam_role_arn": p.IAMRoleARN, "proxy_iam_role_arn": p.ProxyIAMRoleARN,
			"update_iam_role_trust_policy": p.UpdateTrustPolicy,
		}
		if p.ProxyPool != nil {
			body["proxy_pool"] = p.ProxyPool
		}
		return c.do(ctx, http.MethodPost, brokerapi.PathUpdateMapping, body, nil)
	}
	return c.do(ctx, http.MethodPost, brokerapi.PathUpdateMultirole, map[string]any{"domino_org": m.Org, "role_data": m.Pairs}, nil)
}

func deleteMapping(ctx context.Context, c *client, org string) error {
	return c.do(ctx, http.MethodDelete, brokerapi.PathV2Mappings+"/"+url.PathEscape(org), nil, nil)
}

func newMappingsSet(s *settings) *cobra.Command {
	var (
		assets, proxies, members []string
		trust                    []bool
		multi                    bool
		pool                     string
	)
	cmd := &cobra.Command{
		Use:   "set ORG --asset ARN (--proxy ARN|POOL-JSON | --pool NAME --member ARN...) [--asset ARN --proxy ... ...]",
		Short: "Create or replace an org's mapping: one role pair, or several; a proxy role or a pool (admin)",
		Long: `Create or replace an org's mapping. Each --asset (the role with the permissions)
pairs with the --proxy (the role in the cluster's account federating its OIDC
provider) given in the same position. One pair is stored as the legacy single
mapping (update_role_mapping), several as a multi-role mapping
(update_multirole_mapping); --multi stores a single pair in the list shape.

The proxy side may be a pool of proxy roles (docs/design/pools.md): give --proxy
the pool as the API's proxy_pool object, {"name", "members": [ARN, ...],
"elastic": {"template_role_arn", "path", "permissions_boundary_arn",
"max_members", "empty_grace_seconds"}}, or, for one pair and a static pool,
--pool NAME with --member ARN once per member (the first is the pair's
proxy_iam_role_arn). The broker verifies every member with IAM.

--trust-update=false leaves the proxy role's trust policy to you; given once it
applies to every pair, or give it once per pair.`,
		Example: `  irsactl mappings set acme \
      --asset arn:aws:iam::524112250363:role/acme-list-bucket-role \
      --proxy arn:aws:iam::946429944765:role/acme-list-bucket-role
  irsactl mappings set acme \
      --asset arn:aws:iam::524112250363:role/acme-read  --proxy arn:aws:iam::946429944765:role/acme-read \
      --asset arn:aws:iam::524112250363:role/acme-write --proxy arn:aws:iam::946429944765:role/acme-write \
      --trust-update=true --trust-update=false
  irsactl mappings set acme --asset arn:aws:iam::524112250363:role/acme \
      --pool acme --member arn:aws:iam::946429944765:role/acme-1 --member arn:aws:iam::946429944765:role/acme-2
  irsactl mappings set acme --asset arn:aws:iam::524112250363:role/acme --proxy '{"name": "acme",
      "members": ["arn:aws:iam::946429944765:role/acme-1"],
      "elastic": {"template_role_arn": "arn:aws:iam::946429944765:role/acme-template", "path": "/irsa-pools/acme/",
                  "permissions_boundary_arn": "arn:aws:iam::946429944765:policy/irsa-pool-boundary"}}'`,
		Args:              exactArgs(1, "ORG"),
		ValidArgsFunction: s.completeOrgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if pool != "" || len(members) > 0 {
				if pool == "" || len(members) == 0 || len(proxies) > 0 || len(assets) != 1 {
					return usagef("--pool NAME and --member ARN (once per member) make the proxy side of one pair: give one --asset, no --proxy")
				}
				pp, err := json.Marshal(model.ProxyPool{Name: pool, Members: members})
				if err != nil {
					return err
				}
				proxies = []string{string(pp)}
			}
			if len(assets) == 0 || len(assets) != len(proxies) {
				return usagef("give --asset and --proxy once per role pair (got %d --asset, %d --proxy)", len(assets), len(proxies))
			}
			if len(trust) > 1 && len(trust) != len(assets) {
				return usagef("--trust-update: give it once, or once per role pair (%d)", len(assets))
			}
			m := model.Mapping{Org: args[0], Multi: multi || len(assets) > 1}
			for i := range assets {
				update := true
				switch len(trust) {
				case 1:
					update = trust[0]
				case len(assets):
					update = trust[i]
				}
				p, err := proxyFlag(assets[i], proxies[i], update)
				if err != nil {
					return usagef("--proxy %d: %v", i+1, err)
				}
				m.Pairs = append(m.Pairs, p)
			}
			if err := m.Validate(); err != nil {
				return usagef("%v", err)
			}
			c, format, err := s.clientAndFormat(cmd.Context())
			if err != nil {
				return err
			}
			if err := putMapping(cmd.Context(), c, m); err != nil {
				return err
			}
			return emit(cmd.OutOrStdout(), format, toV2(m), func(t *tabwriter.Writer) { mappingsTable(t, []model.Mapping{m}) })
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&assets, "asset", nil, "asset role ARN (repeat for each pair)")
	f.StringArrayVar(&proxies, "proxy", nil, "proxy role ARN, or a proxy_pool JSON object (repeat for each pair, in the order of --asset)")
	f.StringVar(&pool, "pool", "", "name of the proxy-role pool of a single pair (with --member)")
	f.StringArrayVar(&members, "member", nil, "a static member of --pool (repeat; the first is the pair's proxy role)")
	f.BoolSliceVar(&trust, "trust-update", nil, "whether the broker edits the proxy role's trust policy (default true)")
	f.BoolVar(&multi, "multi", false, "store a single pair in the multi-role (list) shape")
	return cmd
}

// proxyFlag makes a pair of asset and --proxy's value: a role ARN, or a
// proxy_pool JSON object decoded as the broker decodes it (unknown fields
// refused; the first member is the pair's proxy role).
func proxyFlag(asset, proxy string, update bool) (model.RolePair, error) {
	if !strings.HasPrefix(strings.TrimSpace(proxy), "{") {
		return model.RolePair{IAMRoleARN: asset, ProxyIAMRoleARN: proxy, UpdateTrustPolicy: update}, nil
	}
	pp, err := model.DecodePool(json.RawMessage(proxy))
	if err != nil {
		return model.RolePair{}, err
	}
	if len(pp.Members) == 0 {
		return model.RolePair{}, &model.ValidationError{Field: "proxy_pool.members", Message: "at least one member (a proxy role ARN) is required"}
	}
	p := model.RolePair{IAMRoleARN: asset, ProxyIAMRoleARN: pp.Members[0], UpdateTrustPolicy: update, ProxyPool: pp}
	if err := p.Validate(); err != nil {
		return model.RolePair{}, err
	}
	return p, nil
}

func newMappingsDelete(s *settings) *cobra.Command {
	return &cobra.Command{
		Use:               "delete ORG",
		Aliases:           []string{"rm"},
		Short:             "Remove an org's mapping (admin)",
		Long:              "Remove an org's mapping (DELETE /v2/mappings/ORG); exit code 4 when it has none.",
		Example:           "  irsactl mappings delete acme",
		Args:              exactArgs(1, "ORG"),
		ValidArgsFunction: s.completeOrgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, format, err := s.clientAndFormat(cmd.Context())
			if err != nil {
				return err
			}
			if err := deleteMapping(cmd.Context(), c, args[0]); err != nil {
				return err
			}
			return emit(cmd.OutOrStdout(), format, map[string]any{"org": args[0], "deleted": true}, func(t *tabwriter.Writer) {
				row(t, "ORG", "RESULT")
				row(t, args[0], "deleted")
			})
		},
	}
}

func newMappingsExport(s *settings) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "export [--format v2|configmap]",
		Short: "Print every mapping as a file import reads back (backup)",
		Long: `Print every mapping in a file format 'mappings import' reads back:

  v2         /v2's list shape, JSON: {"mappings":[{"org","role_pairs"}], "revision"}
             ("multi": true marks a single pair kept in the legacy list shape)
  configmap  the ConfigMap domino-org-iamrole-mapping as YAML, exactly the values
             the broker and v1.8 store; 'kubectl apply -f' restores it`,
		Example: `  irsactl mappings export > mappings-backup.json
  irsactl mappings export --format configmap > mappings-backup.yaml`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != fileV2 && format != fileConfigMap {
				return usagef("--format: want v2 or configmap")
			}
			c, err := s.client(cmd.Context())
			if err != nil {
				return err
			}
			st, err := fetchState(cmd.Context(), c)
			if err != nil {
				return err
			}
			if format == fileConfigMap {
				b, err := configMapFile(st.sorted())
				if err != nil {
					return err
				}
				_, err = cmd.OutOrStdout().Write(b)
				return err
			}
			return emit(cmd.OutOrStdout(), outJSON, v2File(st.sorted(), st.revision), nil)
		},
	}
	cmd.Flags().StringVar(&format, "format", fileV2, "v2 or configmap")
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{fileV2, fileConfigMap}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// change is one org's difference between the broker and the file.
type change struct {
	Org    string     `json:"org"`
	Op     string     `json:"op"` // add, change, delete
	Before *mappingV2 `json:"before,omitempty"`
	After  *mappingV2 `json:"after,omitempty"`
	before *model.Mapping
	after  *model.Mapping
}

// importPlan is what an import does, or did.
type importPlan struct {
	File      string   `json:"file"`
	Format    string   `json:"format"`
	Revision  string   `json:"revision"`
	Changes   []change `json:"changes"`
	Unchanged int      `json:"unchanged"`
	Applied   bool     `json:"applied"`
	// AppliedRevision is the broker's revision after a batch write.
	AppliedRevision string `json:"applied_revision,omitempty"`
}

func sameMapping(a, b model.Mapping) bool {
	return slices.EqualFunc(a.Pairs, b.Pairs, func(x, y model.RolePair) bool { return reflect.DeepEqual(x, y) }) && (a.Multi || len(a.Pairs) != 1) == (b.Multi || len(b.Pairs) != 1)
}

// plan compares the broker's state with the file's mappings. prune deletes
// the orgs the file does not name.
func plan(st state, want []model.Mapping, prune bool) ([]change, int) {
	var out []change
	same := 0
	named := map[string]bool{}
	for _, w := range want {
		w := w
		named[w.Org] = true
		cur, ok := st.byOrg[w.Org]
		switch {
		case !ok:
			v := toV2(w)
			out = append(out, change{Org: w.Org, Op: "add", After: &v, after: &w})
		case !sameMapping(cur, w):
			b, a := toV2(cur), toV2(w)
			out = append(out, change{Org: w.Org, Op: "change", Before: &b, After: &a, before: &cur, after: &w})
		default:
			same++
		}
	}
	if prune {
		for _, org := range st.orgs() {
			if !named[org] {
				cur := st.byOrg[org]
				b := toV2(cur)
				out = append(out, change{Org: org, Op: "delete", Before: &b, before: &cur})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b change) int { return strings.Compare(a.Org, b.Org) })
	return out, same
}

func pairLine(p model.RolePair) string {
	t := "trust update"
	if !p.UpdateTrustPolicy {
		t = "no trust update"
	}
	return fmt.Sprintf("%s via %s (%s)", p.IAMRoleARN, proxySide(p), t)
}

func printPlan(w io.Writer, p importPlan) {
	for _, c := range p.Changes {
		mark := map[string]string{"add": "+", "change": "~", "delete": "-"}[c.Op]
		fmt.Fprintf(w, "%s %s (%s)\n", mark, c.Org, c.Op)
		if c.before != nil && c.Op != "add" {
			for _, pr := range c.before.Pairs {
				fmt.Fprintf(w, "    - %s\n", pairLine(pr))
			}
		}
		if c.after != nil {
			for _, pr := range c.after.Pairs {
				fmt.Fprintf(w, "    + %s\n", pairLine(pr))
			}
		}
	}
	n := map[string]int{}
	for _, c := range p.Changes {
		n[c.Op]++
	}
	fmt.Fprintf(w, "%d to add, %d to change, %d to delete, %d unchanged (broker revision %s)\n", n["add"], n["change"], n["delete"], p.Unchanged, orDash(p.Revision))
}

// errChanged: the mappings changed between the reviewed dry run and the apply.
var errChanged = errors.New("the broker's mappings changed since the dry run")

func newMappingsImport(s *settings) *cobra.Command {
	var (
		apply, prune bool
		ifRevision   string
	)
	cmd := &cobra.Command{
		Use:   "import FILE [--apply] [--prune] [--if-revision REV]",
		Short: "Compare a mappings file with the broker and, with --apply, write the difference",
		Long: `Read a mappings file (/v2's export, a ConfigMap as 'kubectl get -o yaml' prints it,
its data alone, or GET /role_mappings' answer; JSON or YAML; "-" reads stdin),
validate every mapping as the broker does, and show the difference with the
broker: + added, ~ changed, - deleted (deletions only with --prune).

Without --apply nothing is written (a dry run). With --apply the changes are
written in one step (PATCH /v2/mappings): the broker validates every mapping
as a single write does, and writes all of them or, when it refuses one,
none; the command then fails naming the refused org. The write is guarded
by the revision the diff was computed against: when the mappings changed in
between, nothing is written (exit 5). --if-revision REV also refuses when
the broker's mappings are no longer at the revision a reviewed dry run
showed. A broker older than the batch route is written org by org, undoing
the written ones on a refusal (said on stderr); see docs/design/irsactl.md.`,
		Example: `  irsactl mappings import mappings-backup.yaml                 # dry run: the diff
  irsactl mappings import mappings-backup.yaml --apply --if-revision 12
  kubectl -n domino-field get cm domino-org-iamrole-mapping -o yaml | irsactl mappings import - --prune`,
		Args: exactArgs(1, "FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var data []byte
			var err error
			if args[0] == "-" {
				data, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), maxImportBytes+1))
			} else {
				data, err = os.ReadFile(args[0])
			}
			if err != nil {
				return err
			}
			want, format, err := parseMappingsFile(data)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			c, out, err := s.clientAndFormat(cmd.Context())
			if err != nil {
				return err
			}
			st, err := fetchState(cmd.Context(), c)
			if err != nil {
				return err
			}
			if ifRevision != "" && st.revision != ifRevision {
				return &codedError{exitConflict, fmt.Errorf("%w: revision %s now, %s expected; run the dry run again", errChanged, st.revision, ifRevision)}
			}
			changes, same := plan(st, want, prune)
			p := importPlan{File: args[0], Format: format, Revision: st.revision, Changes: changes, Unchanged: same}
			if p.Changes == nil {
				p.Changes = []change{}
			}
			var (
				applyErr error
				how      string
			)
			if apply && len(changes) > 0 {
				// The diff was computed at st.revision: the batch is written
				// only if the mappings are still there.
				p.AppliedRevision, applyErr = applyBatch(cmd.Context(), c, changes, st.revision)
				how = "in one write"
				if isOldBroker(applyErr) {
					fmt.Fprintf(cmd.ErrOrStderr(), "irsactl: this broker has no batch write (PATCH %s: %v); writing org by org, undoing on a refusal (not isolated: see docs/design/irsactl.md)\n",
						brokerapi.PathV2Mappings, applyErr)
					applyErr = applyAll(cmd.Context(), c, changes, cmd.ErrOrStderr())
					how = "org by org"
				}
				p.Applied = applyErr == nil
			}
			if err := emit(cmd.OutOrStdout(), out, p, func(t *tabwriter.Writer) { printPlan(t, p) }); err != nil {
				return err
			}
			switch {
			case applyErr != nil:
				return applyErr
			case !apply && len(changes) > 0:
				fmt.Fprintf(cmd.ErrOrStderr(), "dry run: nothing written; to write it: irsactl mappings import %s --apply --if-revision %s%s\n",
					args[0], st.revision, map[bool]string{true: " --prune"}[prune])
			case apply && len(changes) > 0:
				fmt.Fprintf(cmd.ErrOrStderr(), "applied %d change(s) %s%s\n", len(changes), how,
					map[bool]string{true: " (broker revision " + p.AppliedRevision + ")"}[p.AppliedRevision != ""])
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&apply, "apply", false, "write the changes (default: dry run)")
	f.BoolVar(&prune, "prune", false, "delete the orgs the file does not name")
	f.StringVar(&ifRevision, "if-revision", "", "refuse (exit 5) unless the broker's mappings are at this revision")
	return cmd
}

// batchBody is the body of PATCH /v2/mappings.
type batchBody struct {
	Put    []mappingV2 `json:"put,omitempty"`
	Delete []string    `json:"delete,omitempty"`
}

// applyBatch writes every change in one PATCH /v2/mappings, guarded by
// revision: the broker writes all of them or none. It returns the revision
// after the write.
func applyBatch(ctx context.Context, c *client, changes []change, revision string) (string, error) {
	var body batchBody
	for _, ch := range changes {
		if ch.after == nil {
			body.Delete = append(body.Delete, ch.Org)
			continue
		}
		body.Put = append(body.Put, toV2(*ch.after))
	}
	var out struct {
		Revision string `json:"revision"`
	}
	err := c.doHeader(ctx, http.MethodPatch, brokerapi.PathV2Mappings, map[string]string{"If-Match": `"` + revision + `"`}, body, &out)
	var ae *apiError
	switch {
	case errors.As(err, &ae) && ae.status == http.StatusPreconditionFailed:
		return "", fmt.Errorf("%w: nothing written, run the import again: %w", errChanged, err)
	case err != nil && !isOldBroker(err):
		return "", fmt.Errorf("nothing written: %w", err)
	}
	return out.Revision, err
}

// isOldBroker: the broker predates PATCH /v2/mappings (405: the route has
// GET only; 404 from a router that does not know the path at all).
func isOldBroker(err error) bool {
	var ae *apiError
	if !errors.As(err, &ae) {
		return false
	}
	return ae.status == http.StatusMethodNotAllowed || ae.status == http.StatusNotFound && (ae.Code == "not_found" || ae.Code == "http_not_found")
}

// applyAll writes changes in order; when one fails, it undoes the ones
// already written, in reverse, and returns the failure.
func applyAll(ctx context.Context, c *client, changes []change, log io.Writer) error {
	do := func(ch change, undo bool) error {
		target := ch.after
		if undo {
			target = ch.before
		}
		if target == nil {
			return deleteMapping(ctx, c, ch.Org)
		}
		return putMapping(ctx, c, *target)
	}
	for i, ch := range changes {
		err := do(ch, false)
		if err == nil {
			continue
		}
		failed := fmt.Errorf("org %q (%s): %w", ch.Org, ch.Op, err)
		var undoErrs []error
		for j := i - 1; j >= 0; j-- {
			if uerr := do(changes[j], true); uerr != nil {
				undoErrs = append(undoErrs, fmt.Errorf("undo org %q: %w", changes[j].Org, uerr))
			}
		}
		if len(undoErrs) > 0 {
			return fmt.Errorf("%w; and %d earlier change(s) could not be undone: %w", failed, len(undoErrs), errors.Join(undoErrs...))
		}
		if i > 0 {
			fmt.Fprintf(log, "irsactl: %d change(s) written before the failure were undone\n", i)
		}
		return failed
	}
	return nil
}
