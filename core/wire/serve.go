package wire

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/irsa-broker/irsa-broker/core/api"
	"github.com/irsa-broker/irsa-broker/core/config"
	"github.com/irsa-broker/irsa-broker/plugins/builtin"
)

// Serve runs `irsa-broker serve`: the broker built from cfg (already
// validated) on its HTTPS listener, and /metrics on its own, until ctx ends.
func Serve(ctx context.Context, cfg config.Serve, log hclog.Logger) error {
	b, err := Build(ctx, cfg, Edges{Builtins: builtin.Names()}, log)
	if err != nil {
		return err
	}
	defer b.Close()
	b.Run(ctx)

	errc := make(chan error, 2)
	n := 1
	if cfg.MetricsAddr != "" {
		n++
		mux := http.NewServeMux()
		mux.Handle("/metrics", b.Metrics.Handler())
		go func() {
			errc <- api.Serve(ctx, api.ServerOptions{Addr: cfg.MetricsAddr, Handler: mux, Logger: log.Named("metrics"), ShutdownTimeout: 5 * time.Second})
		}()
	}
	tlsCert, tlsKey := cfg.TLSCert, cfg.TLSKey
	if cfg.InsecureHTTP {
		tlsCert, tlsKey = "", ""
	}
	go func() {
		errc <- api.Serve(ctx, api.ServerOptions{Addr: cfg.Addr, CertFile: tlsCert, KeyFile: tlsKey, Handler: b.Handler, Logger: log,
			Ready: func(a net.Addr) {
				log.Info("broker listening", "addr", a.String(), "tls", tlsCert != "", "metrics_addr", cfg.MetricsAddr)
			}})
	}()
	// A listener that fails ends the broker; after a clean shutdown (ctx
	// ended) every listener is waited for.
	for range n {
		if err := <-errc; err != nil {
			return err
		}
	}
	return nil
}
