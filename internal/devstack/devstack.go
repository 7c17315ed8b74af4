// Package devstack assembles `irsa-broker dev`: the broker, the IAM/STS
// simulator seeded with the example accounts and roles, and a dev OIDC issuer,
// all in one process on loopback. End-to-end tests start the same stack.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/go-chi/chi/v5"
	"github.com/hashicorp/go-hclog"

	"github.com/irsa-broker/irsa-broker/core/api"
	"github.com/irsa-broker/irsa-broker/core/broker"
	"github.com/irsa-broker/irsa-broker/core/config"
	"github.com/irsa-broker/irsa-broker/core/mapping"
	"github.com/irsa-broker/irsa-broker/core/metrics"
	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/core/policy"
	"github.com/irsa-broker/irsa-broker/core/wire"
	"github.com/irsa-broker/irsa-broker/examples"
	"github.com/irsa-broker/irsa-broker/internal/awssim"
	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
	"github.com/irsa-broker/irsa-broker/plugins/builtin"
	"github.com/irsa-broker/irsa-broker/plugins/static"
)

// The example accounts of the existing service's documentation.
const (
	EKSAccount    = "946429944765"
	AssetsAccount = "524112250363"
	Region        = "us-east-1"
	Audience      = "sts.amazonaws.com"
	// Default credentials of the broker's IAM client in the EKS account.
	DefaultAccessKeyID     = "AKIAIRSADEVBROKER001"
	DefaultSecretAccessKey = "irsa-dev-secret-do-not-use-in-production"
)

// ExampleRoles are the role names of the seeded example, one per org.
var ExampleRoles = map[string]string{
	"irsa-iamrole-list-bucket":   "acme-list-bucket-role",
	"irsa-iamrole-read-bucket":   "acme-read-bucket-role",
	"irsa-iamrole-update-bucket": "acme-update-bucket-role",
}

// Options configure the stack.
type Options struct {
	Addr, AWSAddr string // default 127.0.0.1:6000 and 127.0.0.1:4566; port 0 picks one
	IdentityFile  string // users YAML of the static provider; empty: examples/dev-users.yaml
	// IdentityPlugin, when set, runs the identity provider as a plugin
	// process (built-in name or binary path) through the plugin protocol, as
	// `serve` does; empty runs the static provider in-process (tests).
	IdentityPlugin       string
	IdentityPluginSHA256 string
	// IdentityConfig is the YAML file handed to the plugin (default: IdentityFile).
	IdentityConfig string
	// IdentityProviders, when set, is an --identity-providers file: several
	// providers, each its own plugin process, as serve runs them; it
	// replaces IdentityPlugin and IdentityConfig.
	IdentityProviders string
	PolicyDir         string
	Empty             bool // no seeded mappings
	AccessKeyID       string
	SecretKey         string
	Logger            hclog.Logger
	// DeniedIAMActions are refused to the broker's IAM key (tests of IAM refusals),
	// e.g. "iam:UpdateAssumeRolePolicy".
	DeniedIAMActions []string
	// SimLatency is applied to every simulator call (benchmarks).
	SimLatency time.Duration
	// RequestTimeout bounds each broker request (api.Options.Timeout).
	RequestTimeout time.Duration
}

// Stack is a running dev stack.
type Stack struct {
	BrokerURL, AWSURL, IssuerURL string
	// OIDCProvider is the issuer as IAM names it (no scheme).
	OIDCProvider string
	Sim          *awssim.Server
	Issuer       *Issuer
	Users        []static.User
	Metrics      *metrics.Metrics
	Mappings     mapping.Store
	Policy       *policy.Engine
	AccessKeyID  string
	SecretKey    string

	errc chan error
	n    int
}

// Start brings the stack up; it serves until ctx ends. Wait returns the first
// serving error or nil after a clean shutdown.
func Start(ctx context.Context, o Options) (*Stack, error) {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:6000"
	}
	if o.AWSAddr == "" {
		o.AWSAddr = "127.0.0.1:4566"
	}
	if o.AccessKeyID == "" {
		o.AccessKeyID = DefaultAccessKeyID
	}
	if o.SecretKey == "" {
		o.SecretKey = DefaultSecretAccessKey
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	log := o.Logger

	brokerLn, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return nil, fmt.Errorf("broker listener: %w", err)
	}
	awsLn, err := net.Listen("tcp", o.AWSAddr)
	if err != nil {
		brokerLn.Close()
		return nil, fmt.Errorf("AWS simulator listener: %w", err)
	}
	s := &Stack{
		BrokerURL:   "http://" + brokerLn.Addr().String(),
		AWSURL:      "http://" + awsLn.Addr().String(),
		AccessKeyID: o.AccessKeyID, SecretKey: o.SecretKey,
		errc: make(chan error, 2),
	}
	s.IssuerURL = s.BrokerURL + "/dev/oidc"
	s.OIDCProvider = strings.TrimPrefix(s.IssuerURL, "http://")
	closeAll := func() { brokerLn.Close(); awsLn.Close() }

	if s.Issuer, err = NewIssuer(s.IssuerURL); err != nil {
		closeAll()
		return nil, err
	}
	s.Sim = awssim.New(awssim.Options{Logger: log.Named("awssim"), Region: Region, AllowHTTPIssuers: true})
	if o.SimLatency > 0 {
		s.Sim.SetLatency("", o.SimLatency)
	}
	if err := s.seedAWS(o.DeniedIAMActions); err != nil {
		closeAll()
		return nil, fmt.Errorf("seed simulator: %w", err)
	}

	var seed []model.Mapping
	if !o.Empty {
		seed = exampleMappings()
	}
	s.Mappings = mapping.NewMemoryStore(seed...)
	edges := wire.Edges{
		IAMCredentials:  credentials.NewStaticCredentialsProvider(o.AccessKeyID, o.SecretKey, ""),
		Mappings:        s.Mappings,
		ServiceAccounts: &broker.MemoryServiceAccounts{},
		Routes:          s.devRoutes,
		Builtins:        builtin.Names(),
	}
	if err := s.identityProvider(ctx, o, &edges); err != nil {
		closeAll()
		return nil, err
	}
	cfg := s.config(o)
	if err := cfg.Validate(); err != nil {
		closeAll()
		return nil, fmt.Errorf("dev stack: %w", err)
	}
	b, err := wire.Build(ctx, cfg, edges, log)
	if err != nil {
		closeAll()
		return nil, err
	}
	s.Metrics, s.Policy = b.Metrics, b.Policy
	b.Run(ctx)

	s.n = 2
	go func() {
		defer b.Close()
		s.errc <- api.Serve(ctx, api.ServerOptions{Listener: brokerLn, Handler: b.Handler, Logger: log, ShutdownTimeout: 5 * time.Second})
	}()
	go func() {
		s.errc <- api.Serve(ctx, api.ServerOptions{Listener: awsLn, Handler: s.Sim, Logger: log, ShutdownTimeout: 5 * time.Second})
	}()
	return s, nil
}

// config is `serve`'s configuration for the dev stack: its defaults, with
// the simulator as IAM, the dev issuer as OIDC provider, plain HTTP and
// workloads resolved without Kubernetes. It passes serve's validation.
func (s *Stack) config(o Options) config.Serve {
	c := config.Defaults()
	c.InsecureHTTP = true
	c.Workloads = "caller"
	c.ComputeNamespace = "domino-compute"
	c.OIDCProvider = s.OIDCProvider
	c.AWSRegion, c.IAMEndpoint = Region, s.AWSURL
	c.PolicyDir = o.PolicyDir
	c.IdentityPlugin, c.IdentityPluginSHA256, c.IdentityConfig = o.IdentityPlugin, o.IdentityPluginSHA256, o.IdentityConfig
	if c.IdentityConfig == "" && o.IdentityPlugin == static.Name {
		c.IdentityConfig = o.IdentityFile
	}
	if o.IdentityProviders != "" {
		d := config.Defaults() // the single-provider flags left at their defaults
		c.IdentityPlugin, c.IdentityPluginSHA256, c.IdentityConfig = d.IdentityPlugin, d.IdentityPluginSHA256, d.IdentityConfig
		c.IdentityProvidersFile = o.IdentityProviders
	}
	if o.RequestTimeout > 0 {
		c.RequestTimeout = o.RequestTimeout
	}
	return c
}

// exampleMappings maps each example org to its role pair.
func exampleMappings() []model.Mapping {
	var seed []model.Mapping
	for org, role := range ExampleRoles {
		seed = append(seed, model.Mapping{Org: org, Pairs: []model.RolePair{{
			IAMRoleARN:        "arn:aws:iam::" + AssetsAccount + ":role/" + role,
			ProxyIAMRoleARN:   "arn:aws:iam::" + EKSAccount + ":role/" + role,
			UpdateTrustPolicy: true,
		}}})
	}
	return seed
}

// identityProvider sets the identity edge: the static provider
// in-process, or (IdentityPlugin set) the plugin through the plugin host as
// serve runs it, with the users file or the embedded dev users as its
// configuration. It also fills s.Users for the banner.
func (s *Stack) identityProvider(ctx context.Context, o Options, e *wire.Edges) error {
	users := examples.DevUsers
	if o.IdentityFile != "" {
		b, err := os.ReadFile(o.IdentityFile)
		if err != nil {
			return fmt.Errorf("identity file: %w", err)
		}
		users = b
	}
	if f, err := static.Parse(users); err == nil {
		s.Users = f.Users
	}
	switch {
	case o.IdentityProviders != "":
		s.Users = nil // the banner's users are the static provider's only
	case o.IdentityPlugin == "":
		p := static.New()
		e.Identity = p
		if o.IdentityFile != "" {
			return p.Load(o.IdentityFile)
		}
		return p.Configure(ctx, users)
	case o.IdentityConfig != "" || o.IdentityPlugin == static.Name && o.IdentityFile != "":
		// config() names the file.
	case o.IdentityPlugin == static.Name:
		e.IdentityConfig = users
	default:
		s.Users = nil // the banner's users are the static provider's only
	}
	return nil
}

// Wait blocks until both servers stopped.
func (s *Stack) Wait() error {
	var errs []error
	for range s.n {
		if err := <-s.errc; err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// devRoutes are the dev-only endpoints: the issuer and the workload-token minter.
func (s *Stack) devRoutes(r chi.Router) {
	r.Get("/dev/oidc/.well-known/openid-configuration", s.Issuer.Discovery)
	r.Get("/dev/oidc/keys", s.Issuer.JWKS)
	r.Handle("/metrics", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.Metrics.Handler().ServeHTTP(w, r) }))
	r.Get("/dev/workload-token", func(w http.ResponseWriter, r *http.Request) {
		run := r.URL.Query().Get("run_id")
		if err := broker.ValidateRunID(run); err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"error":{"code":"invalid_run_id","message":%q}}`+"\n", err.Error())
			return
		}
		tok, err := s.Issuer.WorkloadToken("domino-compute", brokerapi.RunPrefix+run, brokerapi.RunPrefix+run, time.Hour)
		if err != nil {
			http.Error(w, `{"error":{"code":"internal","message":"cannot sign token"}}`, http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(tok))
	})
}

// seedAWS creates the example accounts, roles and the OIDC provider.
func (s *Stack) seedAWS(denied []string) error {
	sim := s.Sim
	sim.AddAccount(EKSAccount, 0)
	sim.AddAccount(AssetsAccount, 0)
	if err := sim.AddAccessKey(EKSAccount, s.AccessKeyID, s.SecretKey, denied...); err != nil {
		return err
	}
	providerARN, err := sim.AddOIDCProvider(EKSAccount, s.IssuerURL, []string{Audience})
	if err != nil {
		return err
	}
	for _, role := range ExampleRoles {
		proxyTrust := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":%q},`+
			`"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"%s:aud":%q},"StringLike":{"%s:sub":[]}}}]}`,
			providerARN, s.OIDCProvider, Audience, s.OIDCProvider)
		if _, err := sim.CreateRole(EKSAccount, role, "/", proxyTrust); err != nil {
			return err
		}
		perm := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::%s:role/%s"}]}`, AssetsAccount, role)
		if err := sim.PutRolePolicy(EKSAccount, role, "assume-asset-role", perm); err != nil {
			return err
		}
		assetTrust := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::%s:root"},"Action":"sts:AssumeRole"}]}`, EKSAccount)
		if _, err := sim.CreateRole(AssetsAccount, role, "/", assetTrust); err != nil {
			return err
		}
	}
	return nil
}
