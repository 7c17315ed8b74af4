package awssim

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
)

// RunCommand runs the standalone simulator (`irsa-broker awssim ...`): it parses args,
// listens on --addr, logs "awssim ready" with the address and serves until ctx is done.
//
// Flags: --addr HOST:PORT, --account-id, --access-key-id, --secret-access-key (one
// account and root key), --seed FILE (YAML/JSON, see Seed), --quota N (for
// --account-id), --roles-quota N (for --account-id), --allow-http-issuers, --latency D (default for all actions),
// --propagation-delay D, --region R, --issuer-ca FILE (PEM roots for HTTPS issuers).
func RunCommand(ctx context.Context, args []string, log hclog.Logger) error {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	fs := flag.NewFlagSet("awssim", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	addr := fs.String("addr", "127.0.0.1:4566", "listen address HOST:PORT (port 0 picks a free port)")
	accountID := fs.String("account-id", "", "account id (12 digits) for --access-key-id")
	keyID := fs.String("access-key-id", "", "long-term access key id of the account root")
	secret := fs.String("secret-access-key", "", "secret of --access-key-id")
	seedPath := fs.String("seed", "", "seed file (YAML or JSON) with accounts, keys, roles, OIDC providers, knobs")
	quota := fs.Int("quota", 0, "AssumeRolePolicySizeQuota of --account-id (0 = 2048)")
	rolesQuota := fs.Int("roles-quota", 0, "RolesQuota (roles per account) of --account-id (0 = 1000)")
	allowHTTP := fs.Bool("allow-http-issuers", false, "accept http:// OIDC issuers (dev and tests on loopback)")
	latency := fs.Duration("latency", 0, "added latency for every action")
	propDelay := fs.Duration("propagation-delay", 0, "STS sees policies as they were this long ago")
	region := fs.String("region", DefaultRegion, "region reported by the simulator")
	issuerCA := fs.String("issuer-ca", "", "PEM file with extra CA roots for HTTPS issuers")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("awssim: %w", err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("awssim: unexpected arguments %v", fs.Args())
	}
	opts := Options{Logger: log, Region: *region, AllowHTTPIssuers: *allowHTTP}
	if *issuerCA != "" {
		pem, err := os.ReadFile(*issuerCA)
		if err != nil {
			return fmt.Errorf("awssim: read issuer CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("awssim: no certificates in %s", *issuerCA)
		}
		opts.IssuerCAs = pool
	}
	s := New(opts)
	if *seedPath != "" {
		seed, err := LoadSeed(*seedPath)
		if err != nil {
			return fmt.Errorf("awssim: %w", err)
		}
		if err := s.ApplySeed(seed); err != nil {
			return fmt.Errorf("awssim: %w", err)
		}
	}
	if *keyID != "" || *secret != "" {
		if *accountID == "" || *keyID == "" || *secret == "" {
			return errors.New("awssim: --access-key-id and --secret-access-key go together, with --account-id")
		}
		if err := s.AddAccessKey(*accountID, *keyID, *secret); err != nil {
			return fmt.Errorf("awssim: %w", err)
		}
	}
	if *accountID != "" {
		if !accountIDRe.MatchString(*accountID) {
			return fmt.Errorf("awssim: --account-id %q must be 12 digits", *accountID)
		}
		s.AddAccount(*accountID, *quota)
		if *rolesQuota > 0 {
			s.SetRolesQuota(*accountID, *rolesQuota)
		}
	}
	s.SetLatency("", *latency)
	if *propDelay > 0 {
		s.SetPropagationDelay(*propDelay)
	}

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", *addr)
	if err != nil {
		return fmt.Errorf("awssim: listen: %w", err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("awssim ready", "addr", ln.Addr().String(), "url", "http://"+ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("awssim: serve: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("awssim: shutdown: %w", err)
	}
	return nil
}
