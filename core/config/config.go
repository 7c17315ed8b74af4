// Package config defines the broker's settings: one flag per setting, each
// with an IRSA_* environment variable that is used when the flag is not given.
package config

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
)

// Serve is the configuration of `irsa-broker serve`.
type Serve struct {
	Addr           string
	TLSCert        string
	TLSKey         string
	InsecureHTTP   bool
	MetricsAddr    string
	RequestTimeout time.Duration

	IdentityPlugin       string
	IdentityPluginSHA256 string
	IdentityConfig       string
	IdentityCacheTTL     time.Duration
	PluginDir            string
	PluginEnv            []string

	// IdentityProvidersFile lists several identity providers in order
	// (IdentityProviders); it replaces the three single-provider settings.
	IdentityProvidersFile string

	PolicyDir string
	// DecisionLog is where decisions go as JSON lines: off, stdout or a file.
	DecisionLog string
	// DecisionRing is how many recent decisions GET /v2/decisions serves (0: off).
	DecisionRing int

	MappingStore     string // configmap | file
	MappingFile      string
	FieldNamespace   string
	MappingConfigMap string
	Kubeconfig       string

	ComputeNamespace string
	ServiceURL       string
	CABundleFile     string
	CABundleMap      string
	OIDCProvider     string
	LegacySubjects   bool
	// LegacyGetShape is the shape of the legacy GETs: seed or v1.8.
	LegacyGetShape string

	Workloads              string // kubernetes | caller
	RequirePodToken        bool
	PodTokenAudience       string
	PerUserServiceAccounts bool
	KubeQPS                float64
	KubeBurst              int

	ReplicaID       string
	LeaderElection  bool
	LeaseNamespace  string
	LeaseDuration   time.Duration
	TrustLock       string // lease | none
	CleanupInterval time.Duration
	TrustCacheTTL   time.Duration

	AWSRegion          string
	IAMEndpoint        string
	IAMCallTimeout     time.Duration
	TrustQuotaFallback int

	TokenFile               string
	ConfigRegion            string
	RoleSessionNameFromUser bool
	DurationSeconds         int

	LogLevel  string
	LogFormat string
}

// Defaults returns the configuration with every flag at its default.
func Defaults() Serve {
	var c Serve
	c.Register(flag.NewFlagSet("defaults", flag.ContinueOnError))
	return c
}

// Register binds the serve flags to c with their defaults.
func (c *Serve) Register(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "addr", ":6000", "address of the broker API")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "TLS certificate file (PEM); reloaded when it changes")
	fs.StringVar(&c.TLSKey, "tls-key", "", "TLS private key file (PEM)")
	fs.BoolVar(&c.InsecureHTTP, "insecure-http", false, "serve plain HTTP (only when TLS terminates elsewhere)")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", ":8080", "address of the Prometheus /metrics listener (empty: off)")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", 30*time.Second, "upper bound on one request")

	fs.StringVar(&c.IdentityPlugin, "identity-plugin", "domino", "identity provider: domino, oidc, static (built in) or the path of a plugin binary")
	fs.StringVar(&c.IdentityPluginSHA256, "identity-plugin-sha256", "", "expected SHA-256 (hex) of a plugin binary given by path; checked at every start")
	fs.StringVar(&c.IdentityConfig, "identity-config", "", "YAML file handed to the identity provider's Configure; re-applied when it changes (static: the users file)")
	fs.StringVar(&c.IdentityProvidersFile, "identity-providers", "", "YAML file listing several identity providers, tried in order for each credential (docs/plugins.md); replaces --identity-plugin, --identity-plugin-sha256 and --identity-config")
	fs.DurationVar(&c.IdentityCacheTTL, "identity-cache-ttl", 30*time.Second, "how long an authenticated identity is reused")
	fs.StringVar(&c.PluginDir, "plugin-dir", "", "writable directory for the identity plugin's unix sockets, checked at start (empty: $TMPDIR, else /tmp)")
	fs.Var((*nameList)(&c.PluginEnv), "plugin-env", "names of environment variables passed to the identity plugin besides PATH, HOME, TMPDIR, TZ, SSL_CERT_*, proxies and Go runtime settings (comma-separated or repeated; docs/plugins.md)")

	fs.StringVar(&c.PolicyDir, "policy-dir", "", "directory of Rego policies that add to or replace the defaults; watched for changes")
	fs.StringVar(&c.DecisionLog, "decision-log", "off", "write every policy decision as a JSON line in OPA's decision-log shape (credentials removed): off, stdout, or a file appended to")
	fs.IntVar(&c.DecisionRing, "decision-ring", 1000, "how many recent policy decisions this replica keeps in memory for admins' GET /v2/decisions and irsactl decisions (0: none)")

	fs.StringVar(&c.MappingStore, "mapping-store", "configmap", "where mappings live: configmap or file")
	fs.StringVar(&c.MappingFile, "mapping-file", "", "JSON file of mappings (with --mapping-store=file)")
	fs.StringVar(&c.FieldNamespace, "field-namespace", "domino-field", "namespace of the mapping ConfigMap")
	fs.StringVar(&c.MappingConfigMap, "mapping-configmap", "domino-org-iamrole-mapping", "name of the mapping ConfigMap")
	fs.StringVar(&c.Kubeconfig, "kubeconfig", "", "kubeconfig file (empty: in-cluster configuration)")

	fs.StringVar(&c.ComputeNamespace, "compute-namespace", "domino-compute", "namespace of the workloads")
	fs.StringVar(&c.CABundleFile, "ca-bundle-file", "", "PEM certificates workloads verify the broker with (the CA of its serving certificate, e.g. the ca.crt of cert-manager's secret); with --ca-bundle-configmap, published to the compute namespace and kept up to date")
	fs.StringVar(&c.CABundleMap, "ca-bundle-configmap", "", "name of the ConfigMap of the compute namespace that holds --ca-bundle-file's certificates (key ca.crt); the name is the broker's: anything else found there is replaced")
	fs.StringVar(&c.ServiceURL, "service-url", "", "the URL workloads reach this broker at (their DOMINO_IRSA_ENDPOINT, e.g. https://irsa-svc.domino-field); when set, live pods of the compute namespace wired to another IRSA service are reported (irsa_other_irsa_service_pods, /v2/status, the log): run one service per compute namespace")
	fs.StringVar(&c.OIDCProvider, "oidc-provider", "", "the cluster's OIDC provider as IAM names it, e.g. oidc.eks.us-west-2.amazonaws.com/id/ABC (required)")
	fs.StringVar(&c.LegacyGetShape, "legacy-get-shape", "seed", "shape of GET /role_mappings and /my_role_mappings: seed (an org is one object, or a list when multi-role; my_role_mappings keyed by org) or v1.8 (every org a list, my_role_mappings a list, items with domino_org), for clients written for v1.8")
	fs.BoolVar(&c.LegacySubjects, "legacy-subjects", false, "write subjects as *:<ns>:<sa> like the previous service (default: exact system:serviceaccount:<ns>:<sa>)")

	fs.StringVar(&c.Workloads, "workloads", "kubernetes", "how runs are resolved: kubernetes (pods labelled with the run id, owner checked) or caller (no Kubernetes: every run belongs to its caller; development only)")
	fs.BoolVar(&c.RequirePodToken, "require-pod-token", false, "refuse map requests without the pod's own projected token (X-Irsa-Pod-Token), verified with TokenReview")
	fs.StringVar(&c.PodTokenAudience, "pod-token-audience", "sts.amazonaws.com", "audience a pod token must carry for TokenReview")
	fs.BoolVar(&c.PerUserServiceAccounts, "per-user-service-accounts", false, "trust the caller's per-user service account (user-<sanitised username>) instead of the run's; the run's pod must run as it")
	fs.Float64Var(&c.KubeQPS, "kube-qps", 50, "client-side rate limit of Kubernetes API calls (per second)")
	fs.IntVar(&c.KubeBurst, "kube-burst", 100, "burst of Kubernetes API calls above --kube-qps")

	fs.StringVar(&c.ReplicaID, "replica-id", "", "this replica's identity in Leases (empty: hostname plus a random suffix)")
	fs.BoolVar(&c.LeaderElection, "leader-election", true, "elect one replica (Lease irsa-broker-cleanup) to clean up subjects of ended runs; off: this replica always does")
	fs.StringVar(&c.LeaseNamespace, "lease-namespace", "domino-field", "namespace of the leader-election and per-role trust-lock Leases")
	fs.DurationVar(&c.LeaseDuration, "lease-duration", 15*time.Second, "how long a Lease outlives a replica that stopped renewing it")
	fs.StringVar(&c.TrustLock, "trust-lock", "lease", "cross-replica serialization of trust-policy writes: lease (one Lease per proxy role) or none (a single replica only)")
	fs.DurationVar(&c.CleanupInterval, "cleanup-interval", 10*time.Minute, "period of the leader's full reconcile of trust policies against live pods (0: only when it becomes leader)")
	fs.DurationVar(&c.TrustCacheTTL, "trust-cache-ttl", 30*time.Second, "how stale a proxy role's trust policy, as this replica last read or wrote it, may be to answer a map whose subject it already holds without any IAM call (0: every map reads IAM; docs/design/trust-writer.md)")

	fs.StringVar(&c.AWSRegion, "aws-region", "us-east-1", "AWS region of the IAM client")
	fs.StringVar(&c.IAMEndpoint, "iam-endpoint", "", "IAM endpoint override (AWS_ENDPOINT_URL_IAM is honoured too)")
	fs.DurationVar(&c.IAMCallTimeout, "iam-call-timeout", 10*time.Second, "deadline of one IAM call, retries included")
	fs.IntVar(&c.TrustQuotaFallback, "trust-quota-fallback", 2048, "trust-policy size quota to assume when GetAccountSummary is not permitted")

	fs.StringVar(&c.TokenFile, "token-file", "/var/run/secrets/eks.amazonaws.com/serviceaccount/token", "web_identity_token_file written into the config")
	fs.StringVar(&c.ConfigRegion, "config-region", "", "region written into every profile (empty: none)")
	fs.BoolVar(&c.RoleSessionNameFromUser, "role-session-name-from-user", false, "write role_session_name = <username> so CloudTrail shows who acted")
	fs.IntVar(&c.DurationSeconds, "duration-seconds", 0, "duration_seconds written into asset profiles (0: SDK default; at most 3600 with role chaining)")

	fs.StringVar(&c.LogLevel, "log-level", "info", "trace, debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "json", "json or text")
}

// Validate checks settings that do not depend on the environment.
func (c *Serve) Validate() error {
	var errs []string
	if c.OIDCProvider == "" {
		errs = append(errs, "--oidc-provider is required")
	}
	if strings.Contains(c.OIDCProvider, "://") {
		errs = append(errs, "--oidc-provider is the issuer without scheme, e.g. oidc.eks.us-west-2.amazonaws.com/id/ABC")
	}
	if !c.InsecureHTTP && (c.TLSCert == "" || c.TLSKey == "") {
		errs = append(errs, "--tls-cert and --tls-key are required unless --insecure-http is set")
	}
	if c.ServiceURL != "" {
		if _, err := brokerapi.ServiceOf(c.ServiceURL, c.ComputeNamespace); err != nil {
			errs = append(errs, "--service-url: "+err.Error())
		}
	}
	if c.IdentityProvidersFile != "" && (c.IdentityPlugin != "domino" || c.IdentityPluginSHA256 != "" || c.IdentityConfig != "") {
		errs = append(errs, "--identity-providers replaces --identity-plugin, --identity-plugin-sha256 and --identity-config: set one form, not both")
	}
	switch c.MappingStore {
	case "configmap":
	case "file":
		if c.MappingFile == "" {
			errs = append(errs, "--mapping-file is required with --mapping-store=file")
		}
	default:
		errs = append(errs, "--mapping-store must be configmap or file")
	}
	switch c.Workloads {
	case "kubernetes":
		switch c.TrustLock {
		case "lease", "none":
		default:
			errs = append(errs, "--trust-lock must be lease or none")
		}
		if c.LeaseDuration < 3*time.Second {
			errs = append(errs, "--lease-duration must be at least 3s")
		}
		if c.CleanupInterval < 0 {
			errs = append(errs, "--cleanup-interval must not be negative")
		}
		if (c.CABundleFile == "") != (c.CABundleMap == "") {
			errs = append(errs, "--ca-bundle-file and --ca-bundle-configmap go together")
		}
		if c.KubeQPS <= 0 || c.KubeBurst <= 0 {
			errs = append(errs, "--kube-qps and --kube-burst must be positive")
		}
	case "caller":
		if c.RequirePodToken || c.PerUserServiceAccounts || c.CABundleMap != "" {
			errs = append(errs, "--require-pod-token, --per-user-service-accounts and --ca-bundle-configmap need --workloads=kubernetes")
		}
	default:
		errs = append(errs, "--workloads must be kubernetes or caller")
	}
	if c.LegacyGetShape != "seed" && c.LegacyGetShape != "v1.8" {
		errs = append(errs, "--legacy-get-shape must be seed or v1.8")
	}
	if c.DecisionLog == "" {
		errs = append(errs, "--decision-log must be off, stdout or a file")
	}
	if c.DecisionRing < 0 || c.DecisionRing > 1000000 {
		errs = append(errs, "--decision-ring must be between 0 and 1000000")
	}
	if c.TrustCacheTTL < 0 {
		errs = append(errs, "--trust-cache-ttl must not be negative")
	}
	if c.DurationSeconds < 0 || c.DurationSeconds > 43200 || (c.DurationSeconds > 0 && c.DurationSeconds < 900) {
		errs = append(errs, "--duration-seconds must be 0 or between 900 and 43200 (3600 with role chaining)")
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		errs = append(errs, "--log-format must be json or text")
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid configuration: %s", strings.Join(errs, "; "))
	}
	return nil
}

// nameList is a flag of names, comma-separated and repeatable.
type nameList []string

func (l *nameList) String() string { return strings.Join(*l, ",") }

func (l *nameList) Set(v string) error {
	for _, n := range strings.Split(v, ",") {
		if n = strings.TrimSpace(n); n != "" {
			*l = append(*l, n)
		}
	}
	return nil
}

// EnvName is the environment variable of a flag: IRSA_ + upper snake case.
func EnvName(flagName string) string {
	return "IRSA_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Parse parses args, then fills every flag not given on the command line from
// its IRSA_* variable (lookup is os.LookupEnv in production).
func Parse(fs *flag.FlagSet, args []string, lookup func(string) (string, bool)) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if lookup == nil {
		lookup = os.LookupEnv
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		if v, ok := lookup(EnvName(f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %w", EnvName(f.Name), v, e)
			}
		}
	})
	return err
}

// MarkdownTable documents every flag of fs as the README's configuration table.
func MarkdownTable(fs *flag.FlagSet) string {
	var rows []string
	fs.VisitAll(func(f *flag.Flag) {
		def := f.DefValue
		if def == "" {
			def = " "
		} else {
			def = "`" + def + "`"
		}
		rows = append(rows, fmt.Sprintf("| `--%s` | `%s` | %s | %s |", f.Name, EnvName(f.Name), def, f.Usage))
	})
	sort.Strings(rows)
	return "| flag | environment | default | meaning |\n|---|---|---|---|\n" + strings.Join(rows, "\n") + "\n"
}
