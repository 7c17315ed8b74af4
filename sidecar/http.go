package sidecar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/irsa-broker/irsa-broker/sidecar/verify"
)

// LegacyHealthBody is what the existing sidecar's /healthz answered.
const LegacyHealthBody = "{'status': 'Healthy'}"

// Verification states in /status.
const (
	VerifyDisabled = "disabled"
	VerifyPending  = "pending"
	VerifyOK       = "verified"
	VerifyFailed   = "failed"
)

// Status is the body of GET /status.
type Status struct {
	Ready               bool               `json:"ready"`
	RunID               string             `json:"run_id,omitempty"`
	WorkloadType        string             `json:"workload_type,omitempty"`
	ConfigFile          string             `json:"config_file"`
	Broker              string             `json:"broker"`
	Profiles            []string           `json:"profiles"`
	LastAttempt         time.Time          `json:"last_attempt,omitzero"`
	LastSuccess         time.Time          `json:"last_success,omitzero"`
	LastChange          time.Time          `json:"last_change,omitzero"`
	LastError           *ErrorInfo         `json:"last_error,omitempty"`
	ConsecutiveFailures int                `json:"consecutive_failures"`
	NextRefresh         time.Time          `json:"next_refresh,omitzero"`
	Verification        VerificationStatus `json:"verification"`
}

// VerificationStatus is the STS verification part of Status.
type VerificationStatus struct {
	State   string          `json:"state"`
	Results []verify.Result `json:"results"`
}

// Status returns a snapshot of the agent's state.
func (a *Agent) Status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := Status{
		Ready: a.st.ready, RunID: a.st.info.RunID, WorkloadType: a.st.info.WorkloadType,
		ConfigFile: a.cfg.ConfigFile, Broker: a.cfg.BrokerEndpoint,
		Profiles:    append([]string{}, a.st.profiles...),
		LastAttempt: a.st.lastAttempt, LastSuccess: a.st.lastSuccess, LastChange: a.st.lastChange,
		LastError: a.st.lastErr, ConsecutiveFailures: a.st.failures, NextRefresh: a.st.nextRefresh,
		Verification: VerificationStatus{Results: append([]verify.Result{}, a.st.verification...)},
	}
	switch {
	case a.verifier == nil:
		s.Verification.State = VerifyDisabled
	case a.st.written && a.st.verifiedFor != nil && *a.st.verifiedFor == a.st.content:
		s.Verification.State = VerifyOK
	case len(a.st.verification) > 0 && !verify.AllOK(a.st.verification):
		s.Verification.State = VerifyFailed
	default:
		s.Verification.State = VerifyPending
	}
	return s
}

// Handler serves the sidecar's endpoints.
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("Accept"), "application/json") {
			writeJSON(w, http.StatusOK, map[string]string{"status": "Healthy"})
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(LegacyHealthBody))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		s := a.Status()
		if s.Ready {
			writeJSON(w, http.StatusOK, map[string]any{"ready": true})
			return
		}
		reason := "waiting for the first refresh"
		switch {
		case s.LastError != nil:
			reason = s.LastError.Error()
		case s.Verification.State == VerifyPending && !s.LastAttempt.IsZero():
			reason = "config written; waiting for STS to accept it"
		}
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false, "reason": reason})
	})
	refresh := func(w http.ResponseWriter, r *http.Request) {
		out := a.Refresh(r.Context())
		code := http.StatusOK
		if !out.OK {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, out)
	}
	mux.HandleFunc("GET /refresh", refresh)
	mux.HandleFunc("POST /refresh", refresh)
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, a.Status())
	})
	mux.Handle("GET /metrics", a.MetricsHandler())
	return mux
}

// MetricsHandler serves the agent's Prometheus registry.
func (a *Agent) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(a.m.reg, promhttp.HandlerOpts{})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Run is the daemon: it serves the endpoints on cfg.Addr (or ln when given),
// refreshes until ctx ends, then shuts the server down gracefully. The config
// file is left in place: the workload may still be using it.
func Run(ctx context.Context, cfg Config, log hclog.Logger, d Deps, ln net.Listener) error {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	a, err := New(ctx, cfg, log, d)
	if err != nil {
		return err
	}
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
		}
	}
	servers := []*http.Server{{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second}}
	listeners := []net.Listener{ln}
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("listen on %s: %w", cfg.MetricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", a.MetricsHandler())
		servers = append(servers, &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second})
		listeners = append(listeners, mln)
	}
	errc := make(chan error, len(servers))
	for i, srv := range servers {
		log.Info("listening", "addr", listeners[i].Addr().String())
		go func() {
			if err := srv.Serve(listeners[i]); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve %s: %w", listeners[i].Addr(), err)
			}
		}()
	}
	log.Info("irsa-sidecar started", "broker", cfg.BrokerEndpoint, "config_file", cfg.ConfigFile,
		"refresh_interval", cfg.RefreshInterval.String(), "verify", cfg.Verify)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		_ = a.Run(runCtx)
	}()
	var serveErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case serveErr = <-errc:
		log.Error("server failed", "error", serveErr)
	}
	cancel()
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer scancel()
	for _, srv := range servers {
		if err := srv.Shutdown(sctx); err != nil {
			serveErr = errors.Join(serveErr, fmt.Errorf("shutdown: %w", err))
		}
	}
	<-loopDone
	a.Close()
	log.Info("stopped")
	return serveErr
}

// RunOnce fetches, writes and verifies the config once (with retries for
// transient failures, bounded by cfg.OnceTimeout), for init containers.
func RunOnce(ctx context.Context, cfg Config, log hclog.Logger, d Deps) error {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	a, err := New(ctx, cfg, log, d)
	if err != nil {
		return err
	}
	defer a.Close()
	if cfg.OnceTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.OnceTimeout)
		defer cancel()
	}
	if err := a.Once(ctx); err != nil {
		return err
	}
	s := a.Status()
	log.Info("AWS config ready", "file", cfg.ConfigFile, "profiles", strings.Join(s.Profiles, ","), "verification", s.Verification.State)
	return nil
}
