// Command dominoproxy stands in, in the cluster test's workload pods, for
// the part of a Domino run pod that the sidecar relies on: the API proxy on
// localhost:8899 whose /access-token answers the run's user token. Domino
// ships the real one; this one answers the token in $DOMINO_TOKEN.
package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	token := os.Getenv("DOMINO_TOKEN")
	addr := os.Getenv("DOMINO_API_PROXY_ADDR")
	if addr == "" {
		addr = "127.0.0.1:8899"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /access-token", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(token))
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		os.Stderr.WriteString("dominoproxy: " + err.Error() + "\n")
		os.Exit(1)
	}
}
