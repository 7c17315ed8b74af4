package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/irsa-broker/irsa-broker/core/api"
	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/core/policy"
	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
)

func newDecisionsCmd(s *settings) *cobra.Command {
	var (
		user, since, path string
		limit             int
	)
	cmd := &cobra.Command{
		Use:     "decisions [ID] [--user U] [--since T] [--path grants|allow] [--limit N]",
		Aliases: []string{"decision"},
		Short:   "The broker's recent policy decisions: who got which roles, who was allowed what (admin)",
		Long: `List the recent policy decisions of the broker you are connected to (GET /v2/decisions),
oldest first, or show one in full with its ID. Each replica keeps its own last
decisions in memory (--decision-ring, 1,000 by default); the broker's --decision-log
keeps them all, in the same shape (OPA's decision log).

--user matches the username or the user id; --since takes a time (RFC 3339) or a
duration back from now (15m, 2h). To see why a decision came out as it did, or what the
policy in force now decides, replay it:

  irsactl policy eval DIR --decision ID --from-broker --explain`,
		Example: `  irsactl decisions --user alice --since 1h
  irsactl decisions --path allow --limit 20
  irsactl decisions 4f3c2a1b0d9e8f7a -o json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usagef("%s takes at most one decision ID, got %d arguments", cmd.CommandPath(), len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, format, err := s.clientAndFormat(ctx)
			if err != nil {
				return err
			}
			if len(args) == 1 {
				ev, err := fetchDecision(ctx, c, args[0])
				if err != nil {
					return err
				}
				return emit(cmd.OutOrStdout(), format, ev, func(t *tabwriter.Writer) { decisionDetail(t, ev) })
			}
			q := url.Values{}
			for k, v := range map[string]string{"user": user, "since": since, "path": path} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if limit != 0 {
				q.Set("limit", strconv.Itoa(limit))
			}
			p := brokerapi.PathV2Decisions
			if len(q) > 0 {
				p += "?" + q.Encode()
			}
			var list api.DecisionList
			if err := c.do(ctx, http.MethodGet, p, nil, &list); err != nil {
				return err
			}
			if list.Decisions == nil {
				list.Decisions = []*policy.DecisionEvent{}
			}
			return emit(cmd.OutOrStdout(), format, list, func(t *tabwriter.Writer) {
				row(t, "TIME", "DECISION", "USER", "ACTION", "RUN", "RESULT")
				for _, ev := range list.Decisions {
					row(t, ev.Timestamp.UTC().Format(time.RFC3339), ev.DecisionID, eventUser(ev), eventAction(ev), orDash(eventRun(ev)), resultSummary(ev))
				}
				if len(list.Decisions) == 0 {
					row(t, "(no decisions)", "", "", "", "", "")
				}
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&user, "user", "", "only this user's decisions (username or id)")
	f.StringVar(&since, "since", "", "only decisions since this time (RFC 3339) or this long ago (15m, 2h)")
	f.StringVar(&path, "path", "", "only grants or allow decisions")
	f.IntVar(&limit, "limit", 0, "at most this many, the most recent (default: the broker's, 100)")
	_ = cmd.RegisterFlagCompletionFunc("path", cobra.FixedCompletions([]string{"grants", "allow"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func fetchDecision(ctx context.Context, c *client, id string) (*policy.DecisionEvent, error) {
	var ev policy.DecisionEvent
	if err := c.do(ctx, http.MethodGet, brokerapi.PathV2Decisions+"/"+url.PathEscape(id), nil, &ev); err != nil {
		return nil, err
	}
	return &ev, nil
}

func eventUser(ev *policy.DecisionEvent) string {
	if ev.Input == nil {
		return "-"
	}
	return orDash(ev.Input.Identity.Username)
}

func eventAction(ev *policy.DecisionEvent) string {
	if ev.Input == nil {
		return "-"
	}
	return orDash(ev.Input.Request.Action)
}

func eventRun(ev *policy.DecisionEvent) string {
	if ev.Input == nil {
		return ""
	}
	return ev.Input.Workload.RunID
}

// loggedGrants reads the result of a grants decision.
func loggedGrants(ev *policy.DecisionEvent) ([]model.Grant, error) {
	b, err := json.Marshal(ev.Result)
	if err != nil {
		return nil, err
	}
	var gs []model.Grant
	if err := json.Unmarshal(b, &gs); err != nil {
		return nil, fmt.Errorf("decision %s: the result is not a list of grants: %w", ev.DecisionID, err)
	}
	return gs, nil
}

// resultSummary is a decision's result in a table cell.
func resultSummary(ev *policy.DecisionEvent) string {
	switch {
	case ev.Error != nil:
		return "error: " + ev.Error.Message
	case ev.Path == policy.AllowPath:
		if b, _ := ev.Result.(bool); b {
			return "allowed"
		}
		return "denied"
	}
	gs, err := loggedGrants(ev)
	if err != nil {
		return "?"
	}
	return grantsSummary(gs)
}

func grantsSummary(gs []model.Grant) string {
	if len(gs) == 0 {
		return "no grants"
	}
	roles := make([]string, 0, len(gs))
	for _, g := range gs {
		roles = append(roles, g.Org+":"+roleName(g.IAMRoleARN))
	}
	return strconv.Itoa(len(gs)) + " grant(s): " + strings.Join(roles, ", ")
}

func decisionDetail(t *tabwriter.Writer, ev *policy.DecisionEvent) {
	row(t, "decision", ev.DecisionID)
	row(t, "time", ev.Timestamp.UTC().Format(time.RFC3339Nano))
	row(t, "path", ev.Path)
	row(t, "policy revision", orDash(ev.Revision))
	if ev.Path == policy.GrantsPath {
		row(t, "mapping revision", orDash(ev.MappingRevision()))
	}
	if in := ev.Input; in != nil {
		row(t, "user", fmt.Sprintf("%s (id %s, provider %s)", orDash(in.Identity.Username), orDash(in.Identity.ID), orDash(in.Identity.Provider)))
		row(t, "organizations", orDash(strings.Join(in.Identity.Organizations, ", ")))
		if len(in.Identity.Groups) > 0 {
			row(t, "groups", strings.Join(in.Identity.Groups, ", "))
		}
		row(t, "admin", yesNo(in.Identity.Admin))
		row(t, "action", orDash(in.Request.Action))
		if in.Request.ID != "" {
			row(t, "request id", in.Request.ID)
		}
		if w := in.Workload; w.RunID != "" {
			row(t, "run", fmt.Sprintf("%s (%s, %s/%s)", w.RunID, orDash(w.Type), w.Namespace, w.ServiceAccount))
		}
	}
	if len(ev.Erased) > 0 {
		row(t, "erased", strings.Join(ev.Erased, ", "))
	}
	row(t, "result", resultSummary(ev))
}
