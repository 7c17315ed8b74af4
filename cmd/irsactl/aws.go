package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/spf13/cobra"
)

const awsWhoamiLong = `Print the caller identity (STS GetCallerIdentity) that the AWS SDK's default
credential chain ends up with: AWS_PROFILE, AWS_CONFIG_FILE, AWS_ENDPOINT_URL_STS...
Inside a workload this shows the asset role the sidecar's config leads to.

Always set the service-specific AWS_ENDPOINT_URL_STS when not talking to AWS
itself: the SDK's web-identity and assume-role providers ignore AWS_ENDPOINT_URL.`

func awsWhoamiRun(wait *time.Duration, profile *string) func(cmd *cobra.Command, _ []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		return whoamiAWS(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), *profile, *wait)
	}
}

func awsWhoamiFlags(cmd *cobra.Command) (*time.Duration, *string) {
	wait := cmd.Flags().Duration("wait", 0, "retry (every second) until the chain answers or this long has passed, e.g. while the sidecar writes the config")
	profile := cmd.Flags().String("profile", os.Getenv("AWS_PROFILE"), "profile of AWS_CONFIG_FILE to use ($AWS_PROFILE)")
	return wait, profile
}

func newAWSCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "aws",
		Short: "The AWS side: what the SDK's credential chain sees",
		RunE:  groupRun,
	}
	who := &cobra.Command{
		Use:   "whoami",
		Short: "The AWS identity of the SDK's default credential chain",
		Long:  awsWhoamiLong,
		Example: `  AWS_PROFILE=acme-list-bucket-role AWS_ENDPOINT_URL_STS=http://127.0.0.1:4566 irsactl aws whoami
  irsactl aws whoami --wait 3m     # until the sidecar has written a working config`,
		Args: noArgs,
	}
	wait, profile := awsWhoamiFlags(who)
	who.RunE = awsWhoamiRun(wait, profile)
	cmd.AddCommand(who)
	return cmd
}

// newLegacyWhoamiCmd is `irsactl whoami`: the AWS identity, as before the
// admin commands (workload images and tests run `irsactl whoami -wait 3m`).
// The broker's view of the caller is `irsactl auth whoami`.
func newLegacyWhoamiCmd() *cobra.Command {
	who := &cobra.Command{
		Use:   "whoami",
		Short: "The AWS identity of the SDK's chain (same as 'aws whoami'; the broker's view is 'auth whoami')",
		Long:  awsWhoamiLong + "\n\nThis is 'irsactl aws whoami' under its original name. The broker's view of\nyour identity (user, organizations, admin) is 'irsactl auth whoami'.",
		Example: `  irsactl whoami -wait 3m
  irsactl whoami --profile acme-list-bucket-role`,
		Args: noArgs,
	}
	wait, profile := awsWhoamiFlags(who)
	who.RunE = awsWhoamiRun(wait, profile)
	return who
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// whoamiAWS prints the identity the SDK's default chain ends up with,
// retrying for up to wait.
func whoamiAWS(ctx context.Context, out, errw io.Writer, profile string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		err := callerIdentity(ctx, out, profile)
		if err == nil || !time.Now().Before(deadline) {
			return err
		}
		fmt.Fprintln(errw, "irsactl: retrying:", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second):
		}
	}
}

// callerIdentity asks STS who the SDK's chain is. A profile is passed to
// the SDK explicitly: the Go SDK otherwise prefers AWS_WEB_IDENTITY_TOKEN_FILE
// (which the workload mutation sets in every container) over AWS_PROFILE,
// where boto3 uses the profile.
func callerIdentity(ctx context.Context, out io.Writer, profile string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var opts []func(*config.LoadOptions) error
	if profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return err
	}
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Account: %s\nArn:     %s\nUserId:  %s\n", deref(id.Account), deref(id.Arn), deref(id.UserId))
	return nil
}
