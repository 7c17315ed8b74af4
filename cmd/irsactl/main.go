// Command irsactl is a small client for irsa-broker: it maps a run and shows
// which AWS identity the SDK's own credential chain ends up with.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
)

const usage = `irsactl: a client for irsa-broker.

Usage:
  irsactl whoami [-profile P] [-wait 2m]
                                      the caller identity of the AWS SDK's default chain
                                      (AWS_PROFILE, AWS_CONFIG_FILE, AWS_ENDPOINT_URL_STS, ...);
                                      -wait retries until it answers
  irsactl map -broker URL -run-id ID  POST /map_iam_roles_to_pod_sa and print the config
                                      (token from -token or IRSA_TOKEN)
`

func main() {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "irsactl:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return errors.New("missing command")
	}
	switch args[0] {
	case "whoami":
		fs := flag.NewFlagSet("whoami", flag.ContinueOnError)
		wait := fs.Duration("wait", 0, "retry (every second) until the chain answers or this long has passed, e.g. while the sidecar writes the config")
		profile := fs.String("profile", os.Getenv("AWS_PROFILE"), "profile of AWS_CONFIG_FILE to use (AWS_PROFILE)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		return whoami(ctx, out, *profile, *wait)
	case "map":
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		fs := flag.NewFlagSet("map", flag.ContinueOnError)
		broker := fs.String("broker", "http://127.0.0.1:6000", "broker URL")
		runID := fs.String("run-id", "", "run id")
		token := fs.String("token", os.Getenv("IRSA_TOKEN"), "bearer token")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		body, err := json.Marshal(brokerapi.MapRequest{RunID: *runID})
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(*broker, "/")+brokerapi.PathMap, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(brokerapi.HeaderAuthorization, "Bearer "+*token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("broker answered %s: %s", resp.Status, strings.TrimSpace(string(b)))
		}
		_, err = out.Write(b)
		return err
	case "-h", "--help", "help":
		fmt.Fprint(out, usage)
		return nil
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// whoami prints the identity the SDK's default chain ends up with, retrying
// for up to wait.
func whoami(ctx context.Context, out io.Writer, profile string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		err := callerIdentity(ctx, out, profile)
		if err == nil || !time.Now().Before(deadline) {
			return err
		}
		fmt.Fprintln(os.Stderr, "irsactl: retrying:", err)
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
