package sidecar

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config is the sidecar's configuration (flags and environment, see cmd/irsa-sidecar).
type Config struct {
	// Addr is the loopback HTTP address of /healthz, /readyz, /refresh, /status, /metrics.
	Addr string
	// MetricsAddr optionally serves /metrics on a second address (e.g. :9090 for Prometheus).
	MetricsAddr string
	// BrokerEndpoint is DOMINO_IRSA_ENDPOINT.
	BrokerEndpoint string
	// APIProxy is DOMINO_API_PROXY; the user's token is at <APIProxy>/access-token.
	APIProxy string
	// PodInfoPath is the downward-API labels file (POD_INFO_PATH).
	PodInfoPath string
	// ConfigFile is where the AWS config is written (AWS_CONFIG_FILE).
	ConfigFile string
	// TokenFile is the pod's projected token (AWS_WEB_IDENTITY_TOKEN_FILE), sent to
	// the broker and used for verification.
	TokenFile string
	// WorkloadTokenFile is the only web_identity_token_file the broker's
	// profiles may name: where the workload containers read the projected
	// token. Empty accepts TokenFile and DefaultTokenFile (the EKS path the
	// broker renders by default), which is what a sidecar that reads the token
	// at another mount than the workload needs.
	WorkloadTokenFile string
	// CAFile is a PEM bundle trusted for the broker's TLS, besides the system roots.
	CAFile string
	// InsecureSkipTLSVerify disables broker certificate checks (logged as a warning).
	InsecureSkipTLSVerify bool
	// RefreshInterval is the period between successful refreshes (±10% jitter).
	RefreshInterval time.Duration
	// Verify turns STS verification of written profiles on.
	Verify bool
	// VerifyDeadline bounds how long verification retries through IAM propagation.
	VerifyDeadline time.Duration
	// Region and STSEndpoint configure the STS client used for verification.
	Region      string
	STSEndpoint string
	// BackoffInitial and BackoffMax bound the retry delays after a failed refresh.
	BackoffInitial time.Duration
	BackoffMax     time.Duration
	// RequestTimeout bounds one broker call.
	RequestTimeout time.Duration
	// ShutdownTimeout bounds the HTTP server's graceful shutdown.
	ShutdownTimeout time.Duration
	// OnceTimeout bounds `irsa-sidecar once` including its retries.
	OnceTimeout time.Duration
}

// Defaults of the existing deployment (DESIGN.md, compatibility contract).
const (
	DefaultAddr        = "127.0.0.1:6003"
	DefaultAPIProxy    = "http://localhost:8899"
	DefaultPodInfoPath = "/var/run/podinfo/labels"
	DefaultConfigFile  = "/var/run/.aws/config"
	DefaultTokenFile   = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"
)

// DefaultConfig returns the defaults; BrokerEndpoint has none.
func DefaultConfig() Config {
	return Config{
		Addr:            DefaultAddr,
		APIProxy:        DefaultAPIProxy,
		PodInfoPath:     DefaultPodInfoPath,
		ConfigFile:      DefaultConfigFile,
		TokenFile:       DefaultTokenFile,
		RefreshInterval: 5 * time.Minute,
		Verify:          true,
		VerifyDeadline:  2 * time.Minute,
		Region:          "us-east-1",
		BackoffInitial:  time.Second,
		BackoffMax:      time.Minute,
		RequestTimeout:  30 * time.Second,
		ShutdownTimeout: 5 * time.Second,
		OnceTimeout:     5 * time.Minute,
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.BrokerEndpoint == "" {
		errs = append(errs, errors.New("broker endpoint is required (--broker-url or DOMINO_IRSA_ENDPOINT)"))
	} else if !strings.HasPrefix(c.BrokerEndpoint, "https://") && !strings.HasPrefix(c.BrokerEndpoint, "http://") {
		errs = append(errs, fmt.Errorf("broker endpoint %q must be an http:// or https:// URL", c.BrokerEndpoint))
	}
	for name, v := range map[string]string{"API proxy (DOMINO_API_PROXY)": c.APIProxy, "pod info path (POD_INFO_PATH)": c.PodInfoPath,
		"config file (AWS_CONFIG_FILE)": c.ConfigFile, "token file (AWS_WEB_IDENTITY_TOKEN_FILE)": c.TokenFile} {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is required", name))
		}
	}
	for name, d := range map[string]time.Duration{"refresh interval": c.RefreshInterval, "backoff initial": c.BackoffInitial,
		"backoff max": c.BackoffMax, "request timeout": c.RequestTimeout} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %v", name, d))
		}
	}
	if c.Verify && c.VerifyDeadline <= 0 {
		errs = append(errs, fmt.Errorf("verify deadline must be positive when verification is on, got %v", c.VerifyDeadline))
	}
	if c.BackoffMax < c.BackoffInitial {
		errs = append(errs, fmt.Errorf("backoff max %v is below backoff initial %v", c.BackoffMax, c.BackoffInitial))
	}
	return errors.Join(errs...)
}
