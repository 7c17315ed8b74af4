// Package server assembles the broker from its configuration — identity
// plugin, policy engine, mapping store, IAM client, trust writer, Kubernetes
// parts — and runs its HTTP(S) and metrics listeners until ctx ends.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/irsa-broker/irsa-broker/core/api"
	"github.com/irsa-broker/irsa-broker/core/awsconfig"
	"github.com/irsa-broker/irsa-broker/core/broker"
	"github.com/irsa-broker/irsa-broker/core/config"
	"github.com/irsa-broker/irsa-broker/core/iam"
	"github.com/irsa-broker/irsa-broker/core/identity"
	"github.com/irsa-broker/irsa-broker/core/kube"
	"github.com/irsa-broker/irsa-broker/core/mapping"
	"github.com/irsa-broker/irsa-broker/core/metrics"
	"github.com/irsa-broker/irsa-broker/core/policy"
	"github.com/irsa-broker/irsa-broker/core/trust"
)

// kubeClient builds the Kubernetes client from --kubeconfig or the
// in-cluster configuration.
func kubeClient(cfg config.Serve) (kubernetes.Interface, error) {
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

// mappingStore opens the configured store; the ConfigMap store is watched so
// that a map request costs no API call for the mappings.
func mappingStore(ctx context.Context, cfg config.Serve, cs func() (kubernetes.Interface, error), log hclog.Logger) (mapping.Store, error) {
	if cfg.MappingStore == "file" {
		return mapping.NewFileStore(cfg.MappingFile, log)
	}
	c, err := cs()
	if err != nil {
		return nil, err
	}
	store := mapping.NewConfigMapStore(c, cfg.FieldNamespace, cfg.MappingConfigMap, log)
	if err := store.Start(ctx); err != nil {
		return nil, fmt.Errorf("watch the mapping ConfigMap: %w", err)
	}
	return store, nil
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

// kubeParts is the Kubernetes side of the broker.
type kubeParts struct {
	resolver *kube.Resolver
	events   *kube.Events
	sas      *kube.ServiceAccounts
	locker   trust.Locker
}

// Run serves the broker configured by cfg (already validated) until ctx ends.
func Run(ctx context.Context, cfg config.Serve, log hclog.Logger) error {
	m := metrics.New()
	prov, err := identity.Open(ctx, identity.PluginOptions{
		Name: cfg.IdentityPlugin, SHA256: cfg.IdentityPluginSHA256, ConfigPath: cfg.IdentityConfig, Logger: log, Metrics: m,
		SocketDir: cfg.PluginDir, Env: cfg.PluginEnv,
	})
	if err != nil {
		return err
	}
	defer prov.Close()
	auth := identity.New(prov, identity.Options{TTL: cfg.IdentityCacheTTL, Logger: log, Metrics: m})
	pol, err := policy.New(ctx, policy.Options{PolicyDir: cfg.PolicyDir, Logger: log, Registerer: m.Registry})
	if err != nil {
		return err
	}
	if cfg.PolicyDir != "" {
		go pol.Watch(ctx)
	}
	var cs kubernetes.Interface
	client := func() (kubernetes.Interface, error) {
		if cs != nil {
			return cs, nil
		}
		var err error
		cs, err = kubeClient(cfg)
		return cs, err
	}
	store, err := mappingStore(ctx, cfg, client, log)
	if err != nil {
		return err
	}
	id := replicaID(cfg)
	var kp kubeParts
	if cfg.Workloads == "kubernetes" {
		c, err := client()
		if err != nil {
			return err
		}
		var reviewer kube.PodTokenReviewer = kube.NewTokenReviewer(c, cfg.PodTokenAudience)
		kp.resolver, err = kube.NewResolver(c, kube.ResolverOptions{
			Namespace: cfg.ComputeNamespace, PodTokens: reviewer, RequirePodToken: cfg.RequirePodToken,
			PerUserServiceAccounts: cfg.PerUserServiceAccounts, Logger: log,
		})
		if err != nil {
			return err
		}
		var stopEvents func()
		kp.events, stopEvents = kube.NewEvents(c, log)
		defer stopEvents()
		kp.sas = kube.NewServiceAccounts(c, cfg.ComputeNamespace, log)
		if cfg.TrustLock == "lease" {
			kp.locker = kube.NewLeaseLocker(c, kube.LeaseLockerOptions{Namespace: cfg.LeaseNamespace, Identity: id, LeaseDuration: cfg.LeaseDuration, Logger: log})
		} else {
			log.Warn("trust-policy writes are serialized within this process only: run a single replica (--trust-lock=none)")
		}
	}
	iamClient, err := iam.New(ctx, iam.Options{
		Region: cfg.AWSRegion, Endpoint: cfg.IAMEndpoint, CallTimeout: cfg.IAMCallTimeout,
		QuotaFallback: cfg.TrustQuotaFallback, Logger: log, Registerer: m.Registry,
	})
	if err != nil {
		return err
	}
	subject := func(ns, sa string) string { return trust.Subject(ns, sa, cfg.LegacySubjects) }
	wopts := trust.WriterOptions{
		OIDCProvider: cfg.OIDCProvider, LegacySubjects: cfg.LegacySubjects, Logger: log, Registerer: m.Registry,
	}
	ready := []api.Check{
		{Name: "policy", Fn: func(context.Context) error { return pol.Ready() }},
		{Name: "identity", Fn: auth.Healthy},
		{Name: "mappings", Fn: func(ctx context.Context) error { _, err := store.Snapshot(ctx); return err }},
	}
	var (
		workloads   broker.WorkloadResolver = broker.DevResolver{Namespace: cfg.ComputeNamespace}
		trustWriter broker.TrustWriter
		sas         broker.ServiceAccounts
	)
	if kp.resolver != nil {
		wopts.Locker = kp.locker
		wopts.Prune = kp.resolver.Prune
	}
	writer := trust.NewWriter(iamClient, wopts)
	trustWriter = writer
	if kp.resolver != nil {
		workloads, sas = kp.resolver, kp.sas
		trustWriter = &kube.AuditedTrust{Next: writer, Resolver: kp.resolver, Events: kp.events}
		ready = append(ready, api.Check{Name: "workloads", Fn: kp.resolver.Ready})
		cleaner, err := kube.NewCleaner(kube.CleanerOptions{
			Resolver: kp.resolver, Trust: writer, Roles: kube.ProxyRoles(store), Subject: subject,
			Interval: cfg.CleanupInterval, Events: kp.events, Logger: log,
		})
		if err != nil {
			return err
		}
		go func() {
			if err := kp.resolver.Start(ctx); err != nil {
				log.Error("pod cache did not start", "error", err)
				return
			}
			log.Info("pod cache synced", "namespace", cfg.ComputeNamespace)
			if !cfg.LeaderElection {
				cleaner.Run(ctx)
				return
			}
			if err := kube.RunLeader(ctx, cs, kube.LeaderOptions{Namespace: cfg.LeaseNamespace, Name: "irsa-broker-cleanup",
				Identity: id, LeaseDuration: cfg.LeaseDuration, Logger: log}, cleaner.Run); err != nil {
				log.Error("leader election failed: this replica does no clean-up", "error", err)
			}
		}()
	} else {
		log.Warn("workloads are resolved without Kubernetes: a run is trusted to belong to its caller")
	}
	svc, err := broker.New(broker.Options{
		Auth:            auth,
		Workloads:       workloads,
		Policy:          pol,
		Mappings:        store,
		Trust:           trustWriter,
		ProxyRoles:      writer,
		ServiceAccounts: sas,
		Subject:         subject,
		Render: awsconfig.Options{
			TokenFile: cfg.TokenFile, Region: cfg.ConfigRegion, DurationSeconds: cfg.DurationSeconds,
		},
		RoleSessionNameFromUser: cfg.RoleSessionNameFromUser,
		Metrics:                 m,
		Logger:                  log,
	})
	if err != nil {
		return err
	}
	handler := api.NewHandler(api.Options{
		Service: svc, Metrics: m, Logger: log, Timeout: cfg.RequestTimeout,
		Ready:  ready,
		Status: func() any { return map[string]any{"policy": pol.Status()} },
	})

	errc := make(chan error, 2)
	if cfg.MetricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", m.Handler())
		go func() {
			errc <- api.Serve(ctx, api.ServerOptions{Addr: cfg.MetricsAddr, Handler: mux, Logger: log.Named("metrics"), ShutdownTimeout: 5 * time.Second})
		}()
	}
	tlsCert, tlsKey := cfg.TLSCert, cfg.TLSKey
	if cfg.InsecureHTTP {
		tlsCert, tlsKey = "", ""
	}
	go func() {
		errc <- api.Serve(ctx, api.ServerOptions{Addr: cfg.Addr, CertFile: tlsCert, KeyFile: tlsKey, Handler: handler, Logger: log,
			Ready: func(a net.Addr) {
				log.Info("broker listening", "addr", a.String(), "tls", tlsCert != "", "metrics_addr", cfg.MetricsAddr)
			}})
	}()
	err = <-errc
	if err == nil && cfg.MetricsAddr != "" {
		err = <-errc
	}
	return err
}
