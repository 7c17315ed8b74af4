package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
)

// identity is GET /v2/whoami.
type identity struct {
	ID            string   `json:"id"`
	Username      string   `json:"username"`
	Organizations []string `json:"organizations"`
	Admin         bool     `json:"admin"`
}

func newAuthCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "auth",
		Short: "Your identity as the broker sees it",
		RunE:  groupRun,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "whoami",
		Short: "Who the broker thinks you are: user, organizations, admin",
		Long: `Ask the broker (GET /v2/whoami) who the configured credential is: the user id and
name, the Domino organizations and whether the identity provider says admin.
The AWS-side identity of a workload is 'irsactl aws whoami'.`,
		Example: `  irsactl auth whoami
  IRSA_TOKEN=alice-token irsactl auth whoami -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, format, err := s.clientAndFormat(cmd.Context())
			if err != nil {
				return err
			}
			var id identity
			if err := c.do(cmd.Context(), http.MethodGet, brokerapi.PathV2WhoAmI, nil, &id); err != nil {
				return err
			}
			return emit(cmd.OutOrStdout(), format, id, func(t *tabwriter.Writer) {
				row(t, "USER", "ID", "ADMIN", "ORGANIZATIONS")
				row(t, id.Username, id.ID, yesNo(id.Admin), orDash(strings.Join(id.Organizations, ",")))
			})
		},
	})
	return cmd
}

func (s *settings) clientAndFormat(ctx context.Context) (*client, string, error) {
	format, err := s.format()
	if err != nil {
		return nil, "", err
	}
	c, err := s.client(ctx)
	return c, format, err
}

// mapResult is the JSON answer of /v2/map and /v2/preview.
type mapResult struct {
	Config   string  `json:"config"`
	Grants   []grant `json:"grants"`
	Profiles []struct {
		Name            string `json:"name"`
		SourceProfile   string `json:"source_profile"`
		IAMRoleARN      string `json:"iam_role_arn"`
		ProxyIAMRoleARN string `json:"proxy_iam_role_arn"`
	} `json:"profiles"`
	Subject    string         `json:"subject"`
	Workload   map[string]any `json:"workload"`
	DecisionID string         `json:"decision_id"`
	DryRun     bool           `json:"dry_run"`
}

type grant struct {
	Org               string `json:"org"`
	IAMRoleARN        string `json:"iam_role_arn"`
	ProxyIAMRoleARN   string `json:"proxy_iam_role_arn"`
	UpdateTrustPolicy bool   `json:"update_iam_role_trust_policy"`
}

func runFlags(cmd *cobra.Command) (*string, *string) {
	run := cmd.Flags().String("run", "", "run id (execution id) of the workload")
	wt := cmd.Flags().String("type", "", "workload type: "+strings.Join(brokerapi.WorkloadTypes, ", "))
	_ = cmd.RegisterFlagCompletionFunc("type", cobra.FixedCompletions(brokerapi.WorkloadTypes, cobra.ShellCompDirectiveNoFileComp))
	return run, wt
}

func validRun(run, wt string) (brokerapi.MapRequest, error) {
	if run == "" {
		return brokerapi.MapRequest{}, usagef("--run is required")
	}
	if err := brokerapi.ValidateRunID(run); err != nil {
		return brokerapi.MapRequest{}, usagef("--run: %v", err)
	}
	if err := brokerapi.ValidateWorkloadType(wt); err != nil {
		return brokerapi.MapRequest{}, usagef("--type: %v", err)
	}
	return brokerapi.MapRequest{RunID: run, WorkloadType: wt}, nil
}

// runClient validates --run and --type (a usage error comes before any other),
// then makes the client.
func (s *settings) runClient(ctx context.Context, run, wt string) (brokerapi.MapRequest, *client, string, error) {
	req, err := validRun(run, wt)
	if err != nil {
		return brokerapi.MapRequest{}, nil, "", err
	}
	c, format, err := s.clientAndFormat(ctx)
	return req, c, format, err
}

// postRun posts the run to path (/v2/preview or /v2/map) and prints the answer.
func postRun(cmd *cobra.Command, c *client, format, path string, req brokerapi.MapRequest) error {
	var res mapResult
	if err := c.do(cmd.Context(), http.MethodPost, path, req, &res); err != nil {
		return err
	}
	return emit(cmd.OutOrStdout(), format, res, func(t *tabwriter.Writer) {
		row(t, "ORG", "ASSET ROLE", "PROXY ROLE", "TRUST UPDATE")
		for _, g := range res.Grants {
			row(t, g.Org, g.IAMRoleARN, g.ProxyIAMRoleARN, yesNo(g.UpdateTrustPolicy))
		}
		if len(res.Grants) == 0 {
			row(t, "(no grants)", "", "", "")
		}
		t.Flush()
		fmt.Fprintf(t, "\nsubject: %s\ndecision: %s\n", orDash(res.Subject), orDash(res.DecisionID))
		if res.Config != "" {
			fmt.Fprintf(t, "\n%s", res.Config)
		}
	})
}

func newPreviewCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "preview --run ID",
		Short: "Dry run: the grants and AWS config a run would get (IAM untouched)",
		Long: `Ask the broker (POST /v2/preview) what mapping the run would give you: the grants
your policy decides, the service-account subject and the AWS config. No trust
policy is changed. The run must be yours, as for a real map.`,
		Example: `  irsactl preview --run 64a1b2c3d4e5f60718293a4b
  irsactl preview --run run1 --type cluster-worker -o json`,
		Args: noArgs,
	}
	run, wt := runFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		req, c, format, err := s.runClient(cmd.Context(), *run, *wt)
		if err != nil {
			return err
		}
		return postRun(cmd, c, format, brokerapi.PathV2Preview, req)
	}
	return cmd
}

func newMapCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "map --run ID",
		Short: "Map a run's service account to your roles and print the AWS config",
		Long: `Map a run as its sidecar does (POST /map_iam_roles_to_pod_sa): the broker adds the
run's service-account subject to the proxy roles' trust policies and answers the
AWS config, which is printed as is. With -o json or yaml, the grants, subject and
decision id come too (POST /v2/map).`,
		Example: `  irsactl map --run 64a1b2c3d4e5f60718293a4b > ~/.aws/config
  irsactl map -broker http://127.0.0.1:6000 -run-id run1     # the original flags still work`,
		Args: noArgs,
	}
	run, wt := runFlags(cmd)
	cmd.Flags().StringVar(run, "run-id", "", "same as --run")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		req, c, format, err := s.runClient(cmd.Context(), *run, *wt)
		if err != nil {
			return err
		}
		if format == outTable {
			text, err := c.doRaw(cmd.Context(), http.MethodPost, brokerapi.PathMap, req, "text/plain")
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(text)
			return err
		}
		return postRun(cmd, c, format, brokerapi.PathV2Map, req)
	}
	return cmd
}

func newSACmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "sa",
		Aliases: []string{"service-account"},
		Short:   "Create or delete managed service accounts in the compute namespace",
		RunE:    groupRun,
	}
	for _, create := range []bool{true, false} {
		verb, method, example := "delete", http.MethodDelete, "  irsactl sa delete alice"
		short := "Delete a service account the broker manages (never another one)"
		if create {
			verb, method, example = "create", http.MethodPost, "  irsactl sa create alice      # per-user service accounts (--per-user-service-accounts)"
			short = "Create a managed service account in the compute namespace"
		}
		cmd.AddCommand(&cobra.Command{
			Use:     verb + " NAME",
			Short:   short,
			Long:    short + " (" + method + " " + brokerapi.PathServiceAccount + ", admin).",
			Example: example,
			Args:    exactArgs(1, "NAME"),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, format, err := s.clientAndFormat(cmd.Context())
				if err != nil {
					return err
				}
				var res struct {
					Name    string `json:"service_account_name"`
					Created bool   `json:"created"`
					Deleted bool   `json:"deleted"`
				}
				if err := c.do(cmd.Context(), method, brokerapi.PathServiceAccount, map[string]string{"service_account_name": args[0]}, &res); err != nil {
					return err
				}
				return emit(cmd.OutOrStdout(), format, res, func(t *tabwriter.Writer) {
					row(t, "SERVICE ACCOUNT", "RESULT")
					row(t, res.Name, verb+"d")
				})
			},
		})
	}
	return cmd
}
