package brokerclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
)

// maxConfigBytes bounds the broker's answer.
const maxConfigBytes = 1 << 20

// TokenError is a failure to obtain one of the credentials sent to the broker.
type TokenError struct {
	Source string // "access_token" or "pod_token"
	Err    error
}

func (e *TokenError) Error() string { return e.Err.Error() }
func (e *TokenError) Unwrap() error { return e.Err }

// Options configure a Client.
type Options struct {
	// Endpoint is DOMINO_IRSA_ENDPOINT: the map URL as the existing mutations
	// set it (https://irsa-svc.domino-field/map_iam_roles_to_pod_sa) or the
	// broker's base URL (http:// for dev).
	Endpoint string
	// HTTPClient talks to the broker (see NewHTTPClient); default http.DefaultClient.
	// Its redirect policy is ignored: the Client never follows a redirect.
	HTTPClient *http.Client
	// Access yields the bearer token (Domino's API proxy).
	Access TokenSource
	// Pod yields the pod's projected token for brokerapi.HeaderPodToken; nil sends none.
	Pod       TokenSource
	UserAgent string
	Logger    hclog.Logger
}

// Client calls the broker.
type Client struct {
	o   Options
	url string
	log hclog.Logger
}

// New validates o and returns a Client.
func New(o Options) (*Client, error) {
	if o.Endpoint == "" {
		return nil, errors.New("broker endpoint is required (DOMINO_IRSA_ENDPOINT)")
	}
	if !strings.HasPrefix(o.Endpoint, "https://") && !strings.HasPrefix(o.Endpoint, "http://") {
		return nil, fmt.Errorf("broker endpoint %q must start with https:// or http://", o.Endpoint)
	}
	if o.Access == nil {
		return nil, errors.New("an access-token source is required")
	}
	if o.HTTPClient == nil {
		o.HTTPClient = http.DefaultClient
	}
	// A copy, so the caller's client keeps its own policy: the credentials go
	// to the configured URL only, and a 3xx comes back as an answer.
	hc := *o.HTTPClient
	hc.CheckRedirect = refuseRedirects
	o.HTTPClient = &hc
	if o.UserAgent == "" {
		o.UserAgent = "irsa-sidecar"
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	return &Client{o: o, url: MapURL(o.Endpoint), log: o.Logger}, nil
}

// MapURL is the URL to POST to. The existing mutations set
// DOMINO_IRSA_ENDPOINT to the whole URL (https://irsa-svc.domino-field/map_iam_roles_to_pod_sa);
// a base URL gets the path appended.
func MapURL(endpoint string) string {
	e := strings.TrimRight(endpoint, "/")
	if strings.HasSuffix(e, brokerapi.PathMap) {
		return e
	}
	return e + brokerapi.PathMap
}

// refuseRedirects makes an http.Client return a 3xx answer instead of
// following it (and re-sending the request's credentials to the Location).
func refuseRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Map asks the broker to map the run's roles and returns the AWS config text
// (empty when the user has no grants). It never follows a redirect: a 3xx is a
// *RedirectError, so the credentials reach the configured URL only. Other
// non-200 answers are *Error; missing credentials are *TokenError.
func (c *Client) Map(ctx context.Context, r brokerapi.MapRequest) (string, error) {
	access, err := c.o.Access.Token(ctx)
	if err != nil {
		return "", &TokenError{Source: "access_token", Err: err}
	}
	var pod string
	if c.o.Pod != nil {
		if pod, err = c.o.Pod.Token(ctx); err != nil {
			return "", &TokenError{Source: "pod_token", Err: err}
		}
	}
	body, err := json.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("encode request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("broker request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	// text/plain only: the broker answers JSON when Accept mentions it. Errors
	// come back as JSON either way.
	req.Header.Set("Accept", "text/plain")
	req.Header.Set("User-Agent", c.o.UserAgent)
	req.Header.Set(brokerapi.HeaderAuthorization, "Bearer "+access)
	if pod != "" {
		req.Header.Set(brokerapi.HeaderPodToken, pod)
	}
	resp, err := c.o.HTTPClient.Do(req)
	if err != nil {
		// *url.Error names the method and URL only; no header is ever in it.
		return "", fmt.Errorf("call broker: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxConfigBytes+1))
	if err != nil {
		return "", fmt.Errorf("read broker answer: %w", err)
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return "", &RedirectError{Status: resp.StatusCode, Location: QuoteLocation(resp.Header.Get("Location"), access, pod), URL: c.url}
	}
	if resp.StatusCode != http.StatusOK {
		e := parseError(resp, data, time.Now())
		// A broker that echoes a credential must not get it into our logs.
		e.Message = redact(e.Message, access, pod)
		return "", e
	}
	if len(data) > maxConfigBytes {
		return "", fmt.Errorf("broker answer is larger than %d bytes", maxConfigBytes)
	}
	return string(data), nil
}

// TLSOptions configure the broker connection.
type TLSOptions struct {
	// CAFile is a PEM bundle trusted in addition to the system roots.
	CAFile string
	// InsecureSkipVerify turns certificate verification off (logged as a warning).
	InsecureSkipVerify bool
	Timeout            time.Duration // whole request; default 30s
}

// NewHTTPClient builds the broker's HTTP client: TLS verified against the system
// roots plus CAFile, proxies from the environment, bounded timeouts, no
// redirects followed.
func NewHTTPClient(o TLSOptions, log hclog.Logger) (*http.Client, error) {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("broker CA bundle: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("broker CA bundle %s holds no PEM certificate", o.CAFile)
		}
		tc.RootCAs = pool
	}
	if o.InsecureSkipVerify {
		log.Warn("TLS certificate verification of the broker is OFF (--insecure-skip-tls-verify); use only for testing")
		tc.InsecureSkipVerify = true
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	tr.MaxIdleConns = 2
	tr.IdleConnTimeout = 90 * time.Second
	return &http.Client{Transport: tr, Timeout: o.Timeout, CheckRedirect: refuseRedirects}, nil
}
