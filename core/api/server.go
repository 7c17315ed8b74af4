package api

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/irsa-broker/irsa-broker/internal/filewatch"
)

// ServerOptions configure Serve.
type ServerOptions struct {
	// Listener, when set, is used instead of listening on Addr.
	Listener net.Listener
	Addr     string
	// CertFile and KeyFile enable TLS; they are re-read when they change
	// (cert-manager rotates them in place). Both empty: plain HTTP.
	CertFile, KeyFile string
	Handler           http.Handler
	Logger            hclog.Logger
	// ShutdownTimeout bounds graceful shutdown (default 20s).
	ShutdownTimeout time.Duration
	// Ready, if set, is called with the bound address once listening.
	Ready func(addr net.Addr)
}

// Serve runs an HTTP(S) server until ctx ends, then shuts it down gracefully.
func Serve(ctx context.Context, o ServerOptions) error {
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 20 * time.Second
	}
	srv := &http.Server{
		Handler:           o.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      90 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          o.Logger.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	// Connections that never sent a request (a client's spare dial) would hold
	// up Shutdown for 5s; they are closed at once when shutting down.
	var connMu sync.Mutex
	fresh := map[net.Conn]bool{}
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		connMu.Lock()
		defer connMu.Unlock()
		if st == http.StateNew {
			fresh[c] = true
		} else {
			delete(fresh, c)
		}
	}
	ln := o.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", o.Addr); err != nil {
			return fmt.Errorf("listen on %s: %w", o.Addr, err)
		}
	}
	ln, stopTLS, err := withTLS(ctx, o, srv, ln)
	if err != nil {
		return err
	}
	defer stopTLS()
	if o.Ready != nil {
		o.Ready(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), o.ShutdownTimeout)
	defer cancel()
	shutdownErr := make(chan error, 1)
	go func() { shutdownErr <- srv.Shutdown(sctx) }()
	connMu.Lock()
	for c := range fresh {
		c.Close()
	}
	connMu.Unlock()
	if err := <-shutdownErr; err != nil {
		srv.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// withTLS wraps ln in TLS when o names a certificate, and watches the files
// for rotations until stop is called. On error ln is closed.
func withTLS(ctx context.Context, o ServerOptions, srv *http.Server, ln net.Listener) (_ net.Listener, stop func(), err error) {
	if (o.CertFile == "") != (o.KeyFile == "") {
		ln.Close()
		return nil, nil, errors.New("TLS needs both a certificate and a key file")
	}
	if o.CertFile == "" {
		return ln, func() {}, nil
	}
	// The files are recorded before the pair is loaded, so a rotation in
	// between is reloaded too.
	files, err := filewatch.New([]string{o.CertFile, o.KeyFile}, filewatch.Options{Logger: o.Logger})
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	cr, err := NewCertReloader(o.CertFile, o.KeyFile, o.Logger)
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	wctx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		files.Run(wctx, cr.Reload)
	}()
	srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: cr.GetCertificate}
	return tls.NewListener(ln, srv.TLSConfig), func() { stopWatch(); <-watchDone }, nil
}

// CertReloader serves a certificate loaded from files. Reload loads them
// again; Serve calls it whenever their content changes (internal/filewatch
// follows in-place rewrites, renames and Secret volume ..data swaps). A
// broken new pair is logged and the previous one keeps serving.
type CertReloader struct {
	certFile, keyFile string
	log               hclog.Logger
	cert              atomic.Pointer[tls.Certificate]
}

// NewCertReloader loads the pair once; it fails if the files are unusable.
func NewCertReloader(certFile, keyFile string, log hclog.Logger) (*CertReloader, error) {
	c := &CertReloader{certFile: certFile, keyFile: keyFile, log: log.Named("tls")}
	cert, err := c.load()
	if err != nil {
		return nil, err
	}
	c.cert.Store(cert)
	return c, nil
}

func (c *CertReloader) load() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS key pair %s / %s: %w", c.certFile, c.keyFile, err)
	}
	return &cert, nil
}

// Reload loads the pair again; if it is unusable (a half-written rotation, a
// key that does not match) it logs and the previous pair keeps serving.
func (c *CertReloader) Reload() {
	cert, err := c.load()
	if err != nil {
		c.log.Error("keeping the previous certificate", "error", err)
		return
	}
	c.cert.Store(cert)
	c.log.Info("reloaded TLS certificate", "cert", c.certFile)
}

// GetCertificate is for tls.Config.GetCertificate.
func (c *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cert.Load(), nil
}
