package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
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
	"github.com/irsa-broker/irsa-broker/core/mapping"
	"github.com/irsa-broker/irsa-broker/core/metrics"
	"github.com/irsa-broker/irsa-broker/core/policy"
	"github.com/irsa-broker/irsa-broker/core/trust"
)

func runServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg config.Serve
	cfg.Register(fs)
	if err := config.Parse(fs, args, nil); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	return serve(ctx, cfg, newLogger(stderr, cfg.LogLevel, cfg.LogFormat))
}

func mappingStore(cfg config.Serve, log hclog.Logger) (mapping.Store, error) {
	if cfg.MappingStore == "file" {
		return mapping.NewFileStore(cfg.MappingFile, log)
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
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	return mapping.NewConfigMapStore(cs, cfg.FieldNamespace, cfg.MappingConfigMap, log), nil
}

func serve(ctx context.Context, cfg config.Serve, log hclog.Logger) error {
	m := metrics.New()
	prov, err := identity.Open(ctx, identity.PluginOptions{
		Name: cfg.IdentityPlugin, SHA256: cfg.IdentityPluginSHA256, ConfigPath: cfg.IdentityConfig, Logger: log, Metrics: m,
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
	store, err := mappingStore(cfg, log)
	if err != nil {
		return err
	}
	iamClient, err := iam.New(ctx, iam.Options{
		Region: cfg.AWSRegion, Endpoint: cfg.IAMEndpoint, CallTimeout: cfg.IAMCallTimeout,
		QuotaFallback: cfg.TrustQuotaFallback, Logger: log, Registerer: m.Registry,
	})
	if err != nil {
		return err
	}
	writer := trust.NewWriter(iamClient, trust.WriterOptions{
		OIDCProvider: cfg.OIDCProvider, LegacySubjects: cfg.LegacySubjects, Logger: log, Registerer: m.Registry,
	})
	log.Warn("workloads are resolved without Kubernetes: a run is trusted to belong to its caller")
	svc, err := broker.New(broker.Options{
		Auth:      auth,
		Workloads: broker.DevResolver{Namespace: cfg.ComputeNamespace},
		Policy:    pol,
		Mappings:  store,
		Trust:     writer,
		Subject: func(ns, sa string) string {
			return trust.Subject(ns, sa, cfg.LegacySubjects)
		},
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
		Ready: []api.Check{
			{Name: "policy", Fn: func(context.Context) error { return pol.Ready() }},
			{Name: "identity", Fn: auth.Healthy},
			{Name: "mappings", Fn: func(ctx context.Context) error { _, err := store.Snapshot(ctx); return err }},
		},
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
