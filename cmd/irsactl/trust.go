package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/irsa-broker/irsa-broker/core/broker"
	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
)

func newTrustCmd(s *settings) *cobra.Command {
	var subjects bool
	cmd := &cobra.Command{
		Use:   "trust [--subjects]",
		Short: "The proxy roles and pools the broker edits: members, fill, subjects (admin)",
		Long: `Every proxy side the broker edits (a single proxy role is a pool of one member)
(GET /v2/trust, admins: mapping.read): one row per member with its trust
policy's size against the account's quota, the fill, the subjects it grants and
the free slots (subjects of a run's length it still takes). Members an elastic
pool created are marked (created).

A member whose last trust-writer round on the answering replica is younger than
the broker's --trust-cache-ttl (10s when that is 0) is answered from that round;
the others are read from IAM now (GetRole, at most 8 at once).

--subjects lists every subject with the runs and users of the live pods that run
as it; 'trust get ROLE|POOL' shows one pool that way.`,
		Example: `  irsactl trust
  irsactl trust --subjects
  irsactl trust -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, format, err := s.clientAndFormat(cmd.Context())
			if err != nil {
				return err
			}
			st, err := fetchTrust(cmd.Context(), c)
			if err != nil {
				return err
			}
			return emit(cmd.OutOrStdout(), format, st, func(t *tabwriter.Writer) { trustTables(t, st, subjects) })
		},
	}
	cmd.Flags().BoolVar(&subjects, "subjects", false, "list the subjects with their runs and users")
	cmd.AddCommand(newTrustGet(s))
	return cmd
}

func newTrustGet(s *settings) *cobra.Command {
	return &cobra.Command{
		Use:   "get ROLE|POOL",
		Short: "One pool with its members and subjects (admin)",
		Long: `One pool (GET /v2/trust): by its name, or by one of its members (the role's
name or ARN). Exit code 4 when no pool matches.`,
		Example: `  irsactl trust get acme-update-bucket-role
  irsactl trust get update -o yaml`,
		Args: exactArgs(1, "ROLE|POOL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, format, err := s.clientAndFormat(cmd.Context())
			if err != nil {
				return err
			}
			st, err := fetchTrust(cmd.Context(), c)
			if err != nil {
				return err
			}
			pool, ok := findPool(st, args[0])
			if !ok {
				return &codedError{exitNotFound, fmt.Errorf("no pool or proxy role %q among the %d the broker edits", args[0], len(st.Pools))}
			}
			one := broker.TrustState{Pools: []broker.PoolState{pool}}
			return emit(cmd.OutOrStdout(), format, pool, func(t *tabwriter.Writer) { trustTables(t, one, true) })
		},
	}
}

func fetchTrust(ctx context.Context, c *client) (broker.TrustState, error) {
	var st broker.TrustState
	if err := c.do(ctx, http.MethodGet, brokerapi.PathV2Trust, nil, &st); err != nil {
		return broker.TrustState{}, err
	}
	if st.Pools == nil {
		st.Pools = []broker.PoolState{}
	}
	return st, nil
}

// findPool finds a pool by name, or by a member's ARN or role name.
func findPool(st broker.TrustState, name string) (broker.PoolState, bool) {
	for _, p := range st.Pools {
		if p.Name == name {
			return p, true
		}
	}
	for _, p := range st.Pools {
		for _, m := range p.Members {
			if m.Role == name || roleName(m.Role) == name {
				return p, true
			}
		}
	}
	return broker.PoolState{}, false
}

// roleName is the name part of a role ARN (the ARN itself when it is none).
func roleName(arn string) string {
	if a, err := model.ParseRoleARN(arn); err == nil {
		return a.Name
	}
	return arn
}

// trustTables writes one row per member and, with subjects, one row per
// subject; then the totals.
func trustTables(t *tabwriter.Writer, st broker.TrustState, subjects bool) {
	row(t, "POOL", "ORGS", "MEMBER", "SIZE/QUOTA", "FILL", "SUBJECTS", "FREE SLOTS")
	members, nsub := 0, 0
	for _, p := range st.Pools {
		name := p.Name
		if p.Elastic {
			name += " (elastic, max " + strconv.Itoa(p.MaxMembers) + ")"
		}
		orgs := orDash(strings.Join(p.Orgs, ","))
		for i, m := range p.Members {
			members++
			nsub += len(m.Subjects)
			member := roleName(m.Role)
			if m.Created {
				member += " (created)"
			}
			size, fill := "-", "-"
			switch {
			case m.Error != "":
				size = "unreadable: " + m.Error
			case m.Quota > 0:
				size = fmt.Sprintf("%d/%d", m.Size, m.Quota)
				fill = fmt.Sprintf("%.0f%%", m.FillRatio*100)
			}
			if i > 0 {
				name, orgs = "", ""
			}
			row(t, name, orgs, member, size, fill, strconv.Itoa(len(m.Subjects)), strconv.Itoa(m.FreeSlots))
		}
	}
	roles := ""
	if st.Roles != nil {
		roles = fmt.Sprintf("; the account has %d of %d roles", st.Roles.Used, st.Roles.Quota)
	}
	fmt.Fprintf(t, "%d pool(s), %d member(s), %d subject(s)%s\n", len(st.Pools), members, nsub, roles)
	if !subjects {
		return
	}
	fmt.Fprintln(t)
	row(t, "POOL", "MEMBER", "SUBJECT", "RUNS", "USERS")
	for _, p := range st.Pools {
		for _, m := range p.Members {
			subs := slices.Clone(m.Subjects)
			slices.SortFunc(subs, func(a, b broker.SubjectState) int { return strings.Compare(a.Subject, b.Subject) })
			for _, sub := range subs {
				row(t, p.Name, roleName(m.Role), sub.Subject, orDash(strings.Join(sub.Runs, ",")), orDash(strings.Join(sub.Users, ",")))
			}
		}
	}
}
