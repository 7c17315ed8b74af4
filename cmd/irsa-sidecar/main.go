// Command irsa-sidecar runs next to every workload container: it asks the broker
// for the workload's AWS config, writes it to $AWS_CONFIG_FILE, verifies it
// against STS and keeps it fresh. `irsa-sidecar once` does it once and exits
// (init containers, Ray/Spark workers).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/irsa-broker/irsa-broker/sidecar"
)

var version = "dev"

const usage = `irsa-sidecar: keeps $AWS_CONFIG_FILE current for a Domino workload.

Usage:
  irsa-sidecar [flags]        serve on --addr and refresh periodically
  irsa-sidecar once [flags]   fetch, write and verify once; exit 0 on success
  irsa-sidecar probe [flags]  exit 0 when the running sidecar on --addr is ready
                              (exec readiness probe: the sidecar listens on loopback)
  irsa-sidecar version

Every flag defaults to the environment variable named in its help.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(realMain(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// realMain parses arguments and returns the exit code.
func realMain(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	mode := "serve"
	if len(args) > 0 {
		switch args[0] {
		case "once", "serve":
			mode, args = args[0], args[1:]
		case "version":
			fmt.Fprintln(stdout, version)
			return 0
		}
	}
	probe := false
	if len(args) > 0 && args[0] == "probe" {
		probe, args = true, args[1:]
	}
	cfg, logOpts, err := parseConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if probe {
		// The probe needs only --addr; the rest of the configuration may be absent.
		return probeReady(ctx, cfg.Addr, stderr)
	}
	if err != nil {
		fmt.Fprintln(stderr, "irsa-sidecar:", err)
		return 2
	}
	log := hclog.New(&hclog.LoggerOptions{
		Name: "irsa-sidecar", Output: stderr, Level: hclog.LevelFromString(logOpts.level),
		JSONFormat: logOpts.format != "text", TimeFormat: time.RFC3339Nano,
	})
	if mode == "once" {
		log = log.With("mode", "once")
	}
	if err := run(ctx, mode, cfg, log); err != nil {
		log.Error("irsa-sidecar failed", "error", err.Error())
		return 1
	}
	return 0
}

// run starts the daemon or the one-shot mode.
func run(ctx context.Context, mode string, cfg sidecar.Config, log hclog.Logger) error {
	if mode == "once" {
		return sidecar.RunOnce(ctx, cfg, log, sidecar.Deps{})
	}
	return sidecar.Run(ctx, cfg, log, sidecar.Deps{}, nil)
}

type logOptions struct{ level, format string }

// parseConfig reads flags whose defaults come from the environment.
func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (sidecar.Config, logOptions, error) {
	def := sidecar.DefaultConfig()
	env := func(name, fallback string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return fallback
	}
	var envErrs []error
	envDur := func(name string, fallback time.Duration) time.Duration {
		v := getenv(name)
		if v == "" {
			return fallback
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			envErrs = append(envErrs, fmt.Errorf("%s: %w", name, err))
			return fallback
		}
		return d
	}
	envBool := func(name string, fallback bool) bool {
		v := getenv(name)
		if v == "" {
			return fallback
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			envErrs = append(envErrs, fmt.Errorf("%s: %w", name, err))
			return fallback
		}
		return b
	}
	stsDefault := env("AWS_ENDPOINT_URL_STS", getenv("AWS_ENDPOINT_URL"))
	region := env("AWS_REGION", env("AWS_DEFAULT_REGION", def.Region))

	var c sidecar.Config
	var lo logOptions
	fs := flag.NewFlagSet("irsa-sidecar", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage, "\nFlags:\n"); fs.PrintDefaults() }
	fs.StringVar(&c.Addr, "addr", env("IRSA_SIDECAR_ADDR", def.Addr), "listen address of /healthz, /readyz, /refresh, /status, /metrics (IRSA_SIDECAR_ADDR)")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", getenv("IRSA_SIDECAR_METRICS_ADDR"), "optional second address serving only /metrics (IRSA_SIDECAR_METRICS_ADDR)")
	fs.StringVar(&c.BrokerEndpoint, "broker-url", getenv("DOMINO_IRSA_ENDPOINT"), "broker map URL as the mutations set it (https://irsa-svc.domino-field/map_iam_roles_to_pod_sa) or its base URL; http:// allowed for dev (DOMINO_IRSA_ENDPOINT)")
	fs.StringVar(&c.APIProxy, "api-proxy", env("DOMINO_API_PROXY", def.APIProxy), "Domino API proxy serving /access-token (DOMINO_API_PROXY)")
	fs.StringVar(&c.PodInfoPath, "pod-info", env("POD_INFO_PATH", def.PodInfoPath), "downward-API labels file (POD_INFO_PATH)")
	fs.StringVar(&c.ConfigFile, "config-file", env("AWS_CONFIG_FILE", def.ConfigFile), "AWS config file to write (AWS_CONFIG_FILE)")
	fs.StringVar(&c.TokenFile, "token-file", env("AWS_WEB_IDENTITY_TOKEN_FILE", def.TokenFile), "pod's projected token (AWS_WEB_IDENTITY_TOKEN_FILE)")
	fs.StringVar(&c.CAFile, "ca-file", env("IRSA_CA_FILE", getenv("DOMINO_IRSA_SSL_CERT")), "PEM bundle trusted for the broker's TLS, besides the system roots (IRSA_CA_FILE, else DOMINO_IRSA_SSL_CERT as the mutations set it)")
	fs.BoolVar(&c.InsecureSkipTLSVerify, "insecure-skip-tls-verify", envBool("IRSA_INSECURE_SKIP_TLS_VERIFY", false), "do not verify the broker's certificate; testing only (IRSA_INSECURE_SKIP_TLS_VERIFY)")
	fs.DurationVar(&c.RefreshInterval, "refresh-interval", envDur("IRSA_REFRESH_INTERVAL", def.RefreshInterval), "period between refreshes (IRSA_REFRESH_INTERVAL)")
	fs.BoolVar(&c.Verify, "verify", envBool("IRSA_VERIFY", def.Verify), "verify each src_ profile with STS AssumeRoleWithWebIdentity (IRSA_VERIFY)")
	fs.DurationVar(&c.VerifyDeadline, "verify-deadline", envDur("IRSA_VERIFY_DEADLINE", def.VerifyDeadline), "how long verification retries through IAM propagation (IRSA_VERIFY_DEADLINE)")
	fs.StringVar(&c.Region, "region", region, "AWS region of the STS client (AWS_REGION, AWS_DEFAULT_REGION)")
	fs.StringVar(&c.STSEndpoint, "sts-endpoint", stsDefault, "STS endpoint override (AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL)")
	fs.DurationVar(&c.BackoffInitial, "backoff-initial", envDur("IRSA_BACKOFF_INITIAL", def.BackoffInitial), "first retry delay after a failure (IRSA_BACKOFF_INITIAL)")
	fs.DurationVar(&c.BackoffMax, "backoff-max", envDur("IRSA_BACKOFF_MAX", def.BackoffMax), "retry delay cap; Retry-After may exceed it (IRSA_BACKOFF_MAX)")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", envDur("IRSA_REQUEST_TIMEOUT", def.RequestTimeout), "timeout of one broker call (IRSA_REQUEST_TIMEOUT)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", envDur("IRSA_SHUTDOWN_TIMEOUT", def.ShutdownTimeout), "graceful shutdown bound (IRSA_SHUTDOWN_TIMEOUT)")
	fs.DurationVar(&c.OnceTimeout, "timeout", envDur("IRSA_ONCE_TIMEOUT", def.OnceTimeout), "`once` only: give up after this long (IRSA_ONCE_TIMEOUT)")
	fs.StringVar(&lo.level, "log-level", env("LOG_LEVEL", "info"), "trace, debug, info, warn, error (LOG_LEVEL)")
	fs.StringVar(&lo.format, "log-format", env("LOG_FORMAT", "json"), "json or text (LOG_FORMAT)")
	if err := fs.Parse(args); err != nil {
		return c, lo, err
	}
	if fs.NArg() > 0 {
		return c, lo, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if len(envErrs) > 0 {
		return c, lo, errors.Join(envErrs...)
	}
	if lo.format != "json" && lo.format != "text" {
		return c, lo, fmt.Errorf("--log-format must be json or text, got %q", lo.format)
	}
	if hclog.LevelFromString(lo.level) == hclog.NoLevel {
		return c, lo, fmt.Errorf("--log-level %q is not a level", lo.level)
	}
	return c, lo, c.Validate()
}

// probeReady asks the running sidecar's /readyz; 0 when it answers 200.
func probeReady(ctx context.Context, addr string, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
	if err != nil {
		fmt.Fprintln(stderr, "irsa-sidecar probe:", err)
		return 1
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintln(stderr, "irsa-sidecar probe:", err)
		return 1
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		fmt.Fprintf(stderr, "irsa-sidecar probe: not ready: %s %s\n", res.Status, strings.TrimSpace(string(b)))
		return 1
	}
	return 0
}
