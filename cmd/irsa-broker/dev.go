package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/irsa-broker/irsa-broker/core/config"
	"github.com/irsa-broker/irsa-broker/internal/devstack"
)

func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = usageOf(fs, stderr)
	var o devstack.Options
	var logLevel string
	fs.StringVar(&o.Addr, "addr", "127.0.0.1:6000", "address of the broker (plain HTTP)")
	fs.StringVar(&o.AWSAddr, "aws-addr", "127.0.0.1:4566", "address of the IAM/STS simulator")
	fs.StringVar(&o.IdentityFile, "identity-file", "", "users YAML of the static identity provider (default: examples/dev-users.yaml, embedded)")
	fs.StringVar(&o.IdentityPlugin, "identity-plugin", "static", "identity provider, run as a plugin process: domino, oidc, static or the path of a plugin binary")
	fs.StringVar(&o.IdentityPluginSHA256, "identity-plugin-sha256", "", "expected SHA-256 (hex) of a plugin binary given by path")
	fs.StringVar(&o.IdentityConfig, "identity-config", "", "YAML file handed to the identity plugin (default for static: --identity-file)")
	fs.StringVar(&o.IdentityProviders, "identity-providers", "", "YAML file of several identity providers tried in order (docs/plugins.md); replaces --identity-plugin and --identity-config")
	fs.StringVar(&o.PolicyDir, "policy-dir", "", "directory of Rego policies that add to or replace the defaults")
	fs.BoolVar(&o.Empty, "empty", false, "start without the example mappings")
	fs.StringVar(&o.AccessKeyID, "aws-access-key-id", devstack.DefaultAccessKeyID, "access key the simulator accepts for the EKS account")
	fs.StringVar(&o.SecretKey, "aws-secret-access-key", devstack.DefaultSecretAccessKey, "its secret")
	fs.StringVar(&logLevel, "log-level", "info", "trace, debug, info, warn or error")
	if err := config.Parse(fs, args, nil); err != nil {
		return err
	}
	o.Logger = newLogger(stderr, logLevel, "text")
	st, err := devstack.Start(ctx, o)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, banner(st))
	return st.Wait()
}

// banner prints everything needed to walk through the flow by hand.
func banner(st *devstack.Stack) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("irsa-broker dev is ready")
	w("")
	w("  broker        %s", st.BrokerURL)
	w("  IAM/STS sim   %s  (EKS account %s, assets account %s)", st.AWSURL, devstack.EKSAccount, devstack.AssetsAccount)
	w("  OIDC issuer   %s", st.IssuerURL)
	w("  metrics       %s/metrics", st.BrokerURL)
	w("")
	w("Users (static identity provider):")
	for _, u := range st.Users {
		role := "user"
		if u.Admin {
			role = "admin"
		}
		w("  %-8s %-6s token %-14s orgs %s", u.Username, role, u.Token, strings.Join(u.Organizations, ","))
	}
	w("")
	w("AWS settings for the simulator:")
	w("  export AWS_ENDPOINT_URL_IAM=%s AWS_ENDPOINT_URL_STS=%s AWS_REGION=%s", st.AWSURL, st.AWSURL, devstack.Region)
	w("  export AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s   # the broker's IAM key (EKS account)", st.AccessKeyID, st.SecretKey)
	w("")
	w("Walkthrough:")
	w("  curl -s %s/healthz", st.BrokerURL)
	w("  curl -s -H 'Authorization: Bearer alice-token' %s/my_role_mappings", st.BrokerURL)
	w("  curl -s -H 'Authorization: Bearer admin-token' %s/role_mappings", st.BrokerURL)
	w("  curl -s -H 'Authorization: Bearer alice-token' -d '{\"run_id\":\"run1\"}' %s/map_iam_roles_to_pod_sa > /tmp/aws-config", st.BrokerURL)
	w("  curl -s %s/dev/workload-token?run_id=run1 > /tmp/token", st.BrokerURL)
	w("  sed -i 's#/var/run/secrets/eks.amazonaws.com/serviceaccount/token#/tmp/token#' /tmp/aws-config")
	w("  env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY AWS_CONFIG_FILE=/tmp/aws-config AWS_PROFILE=acme-list-bucket-role \\")
	w("      AWS_ENDPOINT_URL_STS=%s AWS_REGION=%s go run ./cmd/irsactl whoami", st.AWSURL, devstack.Region)
	w("  curl -s -H 'Authorization: Bearer admin-token' -d '{\"domino_org\":\"irsa-iamrole-list-bucket\",\"iam_role_arn\":\"arn:aws:iam::%s:role/acme-list-bucket-role\",\"proxy_iam_role_arn\":\"arn:aws:iam::%s:role/acme-list-bucket-role\"}' %s/update_role_mapping", devstack.AssetsAccount, devstack.EKSAccount, st.BrokerURL)
	w("  curl -s -X DELETE -H 'Authorization: Bearer admin-token' -d '{\"domino_org\":\"irsa-iamrole-read-bucket\"}' %s/delete_role_mapping", st.BrokerURL)
	w("  curl -s -H 'Authorization: Bearer bob-token' -d '{\"run_id\":\"run2\"}' %s/v2/preview", st.BrokerURL)
	w("")
	w("The same as an admin, with irsactl (docs/irsactl.md):")
	w("  export IRSA_BROKER=%s IRSA_TOKEN=admin-token", st.BrokerURL)
	w("  go run ./cmd/irsactl mappings list")
	w("  go run ./cmd/irsactl mappings export --format configmap > /tmp/mappings-backup.yaml")
	w("  go run ./cmd/irsactl trust")
	w("  IRSA_TOKEN=bob-token go run ./cmd/irsactl preview --run run2")
	w("  go run ./cmd/irsactl decisions --since 10m")
	w("")
	w("Press Ctrl-C to stop.")
	return b.String()
}
