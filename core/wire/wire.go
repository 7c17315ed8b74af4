// Package wire is the broker's one composition root. Build turns a
// configuration into the running graph (identity host, policy engine,
// mapping store, IAM client, trust writer, Kubernetes adapters, use cases,
// HTTP handler); `serve`, `dev` and the tests all go through it, so the
// dev stack runs exactly serve's graph with simulated edges (Edges).
package wire

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/go-chi/chi/v5"
	"github.com/hashicorp/go-hclog"
	opaversion "github.com/open-policy-agent/opa/v1/version"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/irsa-broker/irsa-broker/core/api"
	"github.com/irsa-broker/irsa-broker/core/awsconfig"
	"github.com/irsa-broker/irsa-broker/core/broker"
	"github.com/irsa-broker/irsa-broker/core/config"
	"github.com/irsa-broker/irsa-broker/core/iam"
	"github.com/irsa-broker/irsa-broker/core/kube"
	"github.com/irsa-broker/irsa-broker/core/mapping"
	"github.com/irsa-broker/irsa-broker/core/metrics"
	"github.com/irsa-broker/irsa-broker/core/policy"
	"github.com/irsa-broker/irsa-broker/core/trust"
	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// Edges replace parts of the outside world. The zero value is production:
// everything is built from the configuration.
type Edges struct {
	// Kubernetes replaces the client built from --kubeconfig or the
	// in-cluster configuration.
	Kubernetes kubernetes.Interface
	// Identity replaces the identity plugin named by --identity-plugin
	// (the dev stack runs the static provider in-process); it is then the
	// only provider, named after its Info.
	Identity sdk.Provider
	// IdentityConfig, when set, is handed to the identity plugin instead of
	// the file --identity-config names.
	IdentityConfig []byte
	// IAMCredentials replaces the SDK's default credential chain (the dev
	// stack's simulator key).
	IAMCredentials aws.CredentialsProvider
	// Mappings replaces the configured mapping store.
	Mappings mapping.Store
	// ServiceAccounts replaces the service-account manager when workloads
	// are not resolved through Kubernetes (none by default: 503).
	ServiceAccounts broker.ServiceAccounts
	// Routes mounts extra routes on the broker's handler (the dev issuer).
	Routes func(chi.Router)
	// Builtins are the identity providers `irsa-broker plugin NAME` serves.
	Builtins []string
}

// Broker is a built broker, not yet running its background work.
type Broker struct {
	Handler  http.Handler
	Metrics  *metrics.Metrics
	Policy   *policy.Engine
	Mappings broker.MappingStore
	Service  *broker.Service

	cfg        config.Serve
	id         string // this replica in Leases
	log        hclog.Logger
	background []func(ctx context.Context)
	closers    []func()
}

// Build assembles the broker configured by cfg (already validated). Work
// that runs in the background (pod cache, clean-up, policy reloads) starts
// with Run; everything Build opened is released by Close.
func Build(ctx context.Context, cfg config.Serve, e Edges, log hclog.Logger) (_ *Broker, err error) {
	b := &Broker{Metrics: metrics.New(), cfg: cfg, id: replicaID(cfg), log: log}
	defer func() {
		if err != nil {
			b.Close() // what was opened before the failure
		}
	}()
	auth, err := b.identity(ctx, e)
	if err != nil {
		return nil, err
	}
	sinks, ring, err := b.decisionSinks()
	if err != nil {
		return nil, err
	}
	if b.Policy, err = policy.New(ctx, policy.Options{PolicyDir: cfg.PolicyDir, Logger: log, Registerer: b.Metrics.Registry,
		Decisions: sinks, Labels: map[string]string{"id": b.id, "version": opaversion.Version}}); err != nil {
		return nil, err
	}
	if cfg.PolicyDir != "" {
		b.background = append(b.background, func(ctx context.Context) {
			if err := b.Policy.Watch(ctx); err != nil && ctx.Err() == nil {
				log.Error("policy directory is no longer watched: changes need a restart", "error", err)
			}
		})
	}
	cs, err := kubeClient(cfg, e)
	if err != nil {
		return nil, err
	}
	store, err := b.mappingStore(ctx, e, cs)
	if err != nil {
		return nil, err
	}
	b.Mappings = store
	iamClient, err := iam.New(ctx, iam.Options{
		Region: cfg.AWSRegion, Endpoint: cfg.IAMEndpoint, Credentials: e.IAMCredentials, CallTimeout: cfg.IAMCallTimeout,
		QuotaFallback: cfg.TrustQuotaFallback, Logger: log, Registerer: b.Metrics.Registry,
	})
	if err != nil {
		return nil, err
	}
	g := graph{
		ready: []api.Check{
			{Name: "policy", Fn: func(context.Context) error { return b.Policy.Ready() }},
			{Name: "identity", Fn: auth.Healthy},
			{Name: "mappings", Fn: func(ctx context.Context) error { _, err := store.Snapshot(ctx); return err }},
		},
		workloads: broker.DevResolver{Namespace: cfg.ComputeNamespace},
		sas:       e.ServiceAccounts,
	}
	wopts := trust.WriterOptions{OIDCProvider: cfg.OIDCProvider, CacheTTL: cfg.TrustCacheTTL, Logger: log, Registerer: b.Metrics.Registry}
	if cfg.Workloads == "kubernetes" {
		if err := b.kubernetes(cs, &g, &wopts); err != nil {
			return nil, err
		}
	} else {
		log.Warn("workloads are resolved without Kubernetes: a run is trusted to belong to its caller")
	}
	wopts.Alert = b.fillAlert(g)
	writer := trust.NewWriter(iamClient, wopts)
	g.trust = writer
	if g.audit != nil {
		g.trust = &broker.AuditedTrust{Next: writer, Pods: g.pods, Audit: g.audit}
	}
	pools := b.pools(writer, iamClient, g, wopts.Locker)
	if g.audit != nil {
		if err := b.cleaner(cs, writer, store, g, pools); err != nil {
			return nil, err
		}
	}
	if b.Service, err = broker.New(broker.Options{
		Auth: auth, Workloads: g.workloads, Policy: b.Policy, Mappings: store, Trust: g.trust, ProxyRoles: writer,
		Pools: pools, PoolInspector: pools, Pods: podsOf(g),
		ServiceAccounts: g.sas, LegacySubjects: cfg.LegacySubjects,
		Render:                  awsconfig.Options{TokenFile: cfg.TokenFile, Region: cfg.ConfigRegion, DurationSeconds: cfg.DurationSeconds},
		RoleSessionNameFromUser: cfg.RoleSessionNameFromUser,
		Metrics:                 b.Metrics,
		Logger:                  log,
	}); err != nil {
		return nil, err
	}
	opts := api.Options{
		Service: b.Service, Metrics: b.Metrics, Logger: log, Timeout: cfg.RequestTimeout, Ready: g.ready,
		Status: func() any {
			st := map[string]any{"policy": b.Policy.Status()}
			if g.pods != nil && cfg.ServiceURL != "" {
				others, pods := g.pods.OtherServices(16)
				st["other_irsa_services"] = map[string]any{"services": others, "pods": pods}
			}
			return st
		},
		Extra: e.Routes,
	}
	if ring != nil {
		opts.Decisions = ring
	}
	opts.LegacyGetShape = cfg.LegacyGetShape
	b.Handler = api.NewHandler(opts)
	return b, nil
}

// decisionSinks opens the decision log (--decision-log) and the ring of
// recent decisions (--decision-ring); a log file is closed by Close.
func (b *Broker) decisionSinks() ([]policy.DecisionSink, *policy.DecisionRing, error) {
	var sinks []policy.DecisionSink
	switch b.cfg.DecisionLog {
	case "off", "":
	case "stdout":
		sinks = append(sinks, policy.NewDecisionWriter(os.Stdout, b.log.Named("decision-log")))
	default:
		f, err := os.OpenFile(b.cfg.DecisionLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, nil, fmt.Errorf("--decision-log: %w", err)
		}
		b.closers = append(b.closers, func() { f.Close() })
		sinks = append(sinks, policy.NewDecisionWriter(f, b.log.Named("decision-log")))
	}
	var ring *policy.DecisionRing
	if b.cfg.DecisionRing > 0 {
		ring = policy.NewDecisionRing(b.cfg.DecisionRing)
		sinks = append(sinks, ring)
	}
	return sinks, ring, nil
}

// graph collects the parts that depend on whether Kubernetes resolves
// workloads.
type graph struct {
	ready     []api.Check
	workloads broker.WorkloadResolver
	sas       broker.ServiceAccounts
	trust     broker.TrustWriter
	pods      *kube.Resolver
	audit     broker.Auditor
}

// mappingStore opens the configured store; the ConfigMap store is watched
// so that a map request costs no API call for the mappings.
func (b *Broker) mappingStore(ctx context.Context, e Edges, cs kubernetes.Interface) (mapping.Store, error) {
	switch {
	case e.Mappings != nil:
		return e.Mappings, nil
	case b.cfg.MappingStore == "file":
		return mapping.NewFileStore(b.cfg.MappingFile, b.log)
	case cs == nil:
		return nil, errors.New("the configmap mapping store needs Kubernetes")
	}
	store := mapping.NewConfigMapStore(cs, b.cfg.FieldNamespace, b.cfg.MappingConfigMap, b.log)
	if err := store.Start(ctx); err != nil {
		return nil, fmt.Errorf("watch the mapping ConfigMap: %w", err)
	}
	return store, nil
}

// kubernetes builds the Kubernetes side: the pod resolver (with
// TokenReview), service accounts, Events and the per-role trust Lease.
func (b *Broker) kubernetes(cs kubernetes.Interface, g *graph, wopts *trust.WriterOptions) error {
	cfg := b.cfg
	var service string
	if cfg.ServiceURL != "" {
		s, err := brokerapi.ServiceOf(cfg.ServiceURL, cfg.ComputeNamespace)
		if err != nil {
			return fmt.Errorf("--service-url: %w", err)
		}
		service = s
	}
	resolver, err := kube.NewResolver(cs, kube.ResolverOptions{
		Namespace: cfg.ComputeNamespace, PodTokens: kube.NewTokenReviewer(cs, cfg.PodTokenAudience), RequirePodToken: cfg.RequirePodToken,
		PerUserServiceAccounts: cfg.PerUserServiceAccounts, Service: service, Registerer: b.Metrics.Registry, Logger: b.log,
	})
	if err != nil {
		return err
	}
	events, stopEvents := kube.NewEvents(cs, b.log)
	b.closers = append(b.closers, stopEvents)
	g.pods, g.audit, g.workloads = resolver, events, resolver
	g.sas = kube.NewServiceAccounts(cs, cfg.ComputeNamespace, b.log)
	g.ready = append(g.ready, api.Check{Name: "workloads", Fn: resolver.Ready})
	wopts.Prune = broker.StaleSubjects(resolver)
	if cfg.CABundleMap != "" {
		o := kube.CABundleOptions{Namespace: cfg.ComputeNamespace, Name: cfg.CABundleMap, File: cfg.CABundleFile, Registerer: b.Metrics.Registry, Logger: b.log}
		b.background = append(b.background, func(ctx context.Context) {
			if err := kube.PublishCABundle(ctx, cs, o); err != nil {
				b.log.Error("the CA bundle is not published", "error", err)
			}
		})
	}
	if cfg.TrustLock == "lease" {
		wopts.Locker = kube.NewLeaseLocker(cs, kube.LeaseLockerOptions{Namespace: cfg.LeaseNamespace, Identity: b.id, LeaseDuration: cfg.LeaseDuration, Logger: b.log})
	} else {
		b.log.Warn("trust-policy writes are serialized within this process only: run a single replica (--trust-lock=none)")
	}
	return nil
}

// cleaner starts, in the background, the pod cache and then clean-up: on
// the elected leader only, unless leader election is off.
func (b *Broker) cleaner(cs kubernetes.Interface, writer *trust.Writer, store broker.MappingStore, g graph, pools *trust.Pools) error {
	cfg := b.cfg
	c, err := broker.NewCleaner(broker.CleanerOptions{
		Pods: g.pods, Trust: writer, Roles: broker.ManagedPoolRoles(store, pools), LegacySubjects: cfg.LegacySubjects,
		Interval: cfg.CleanupInterval, Audit: g.audit, Logger: b.log, AfterReconcile: shrinkPools(store, pools),
		LivePodsNow: g.pods.LivePodsNow,
	})
	if err != nil {
		return err
	}
	b.background = append(b.background, func(ctx context.Context) {
		if err := g.pods.Start(ctx); err != nil {
			b.log.Error("pod cache did not start", "error", err)
			return
		}
		b.log.Info("pod cache synced", "namespace", cfg.ComputeNamespace)
		if !cfg.LeaderElection {
			c.Run(ctx)
			return
		}
		if err := kube.RunLeader(ctx, cs, kube.LeaderOptions{Namespace: cfg.LeaseNamespace, Name: "irsa-broker-cleanup",
			Identity: b.id, LeaseDuration: cfg.LeaseDuration, Logger: b.log}, c.Run); err != nil {
			b.log.Error("leader election failed: this replica does no clean-up", "error", err)
		}
	})
	return nil
}

// Run starts the background work; it stops when ctx ends.
func (b *Broker) Run(ctx context.Context) {
	for _, f := range b.background {
		go f(ctx)
	}
}

// Close releases what Build opened (the identity plugin, the event
// broadcaster).
func (b *Broker) Close() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
	b.closers = nil
}

// kubeClient is the edge's client, or one built from --kubeconfig or the
// in-cluster configuration when something needs Kubernetes; nil otherwise.
func kubeClient(cfg config.Serve, e Edges) (kubernetes.Interface, error) {
	if e.Kubernetes != nil {
		return e.Kubernetes, nil
	}
	needed := cfg.Workloads == "kubernetes" || (e.Mappings == nil && cfg.MappingStore == "configmap")
	if !needed {
		return nil, nil
	}
	var rc *rest.Config
	var err error
	if cfg.Kubeconfig != "" {
		rc, err = clientcmd.BuildConfigFromFlags("", cfg.Kubeconfig)
	} else {
		rc, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client configuration: %w", err)
	}
	rc.QPS, rc.Burst = float32(cfg.KubeQPS), cfg.KubeBurst
	rc.UserAgent = "irsa-broker"
	return kubernetes.NewForConfig(rc)
}

// replicaID names this process in Leases.
func replicaID(cfg config.Serve) string {
	if cfg.ReplicaID != "" {
		return cfg.ReplicaID
	}
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return host + "-" + hex.EncodeToString(b)
}
