package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
	"github.com/irsa-broker/irsa-broker/sidecar/brokerclient"
)

// maxAnswer bounds what irsactl reads of one answer.
const maxAnswer = 16 << 20

// client calls the broker's API.
type client struct {
	base string
	http *http.Client
	cred credential
}

// credential is how irsactl authenticates: one header and its value.
type credential struct {
	header string // brokerapi.HeaderAuthorization or HeaderDominoAPIKey; "" sends none
	value  string
	source string // where it came from, for `irsactl config` (never the value)
}

// apiError is an error answer of the broker.
type apiError struct {
	status int
	brokerapi.ErrorDetail
}

func (e *apiError) Error() string {
	s := fmt.Sprintf("%s: %s (HTTP %d", e.Code, e.Message, e.status)
	if e.RequestID != "" {
		s += ", request id " + e.RequestID
	}
	return s + ")"
}

func (e *apiError) exitCode() int {
	switch e.status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return exitForbidden
	case http.StatusNotFound:
		return exitNotFound
	case http.StatusConflict, http.StatusPreconditionFailed:
		return exitConflict
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return exitUnavailable
	}
	return exitError
}

// transportError: the broker could not be reached or answered garbage.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

// redirectError is a 3xx answer. irsactl never follows one: the request
// carries the user's credential (a bearer token, a Domino API key), which
// goes to the configured broker URL only. Go drops Authorization on a
// cross-host redirect but keeps X-Domino-Api-Key, and keeps both on a
// same-host redirect from https to http.
type redirectError struct {
	method, url string // the request that was answered with a redirect
	status      int
	location    string // as sent (one line, bounded, credential redacted); may be empty
}

func (e *redirectError) Error() string {
	loc := e.location
	if loc == "" {
		loc = "(no Location)"
	}
	return fmt.Sprintf("%s %s: the broker answered HTTP %d redirecting to %s; not followed: irsactl sends its credential only to the configured broker URL (set --broker, $%s or the config file to the broker itself)",
		e.method, e.url, e.status, loc, envBroker)
}

// isLoopback reports whether host (a URL's Hostname) is this machine:
// localhost or a loopback address.
func isLoopback(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkTransport refuses to send a credential in clear text: over http://
// only to a loopback host (the dev stack).
func checkTransport(u *url.URL, cred credential) error {
	if cred.header == "" || u.Scheme != "http" || isLoopback(u.Hostname()) {
		return nil
	}
	return usagef("broker URL %s is plain http:// to another host: irsactl does not send a credential (%s) unencrypted; use https:// (plain http is for a broker on this machine, such as the dev stack)",
		u.Redacted(), cred.source)
}

// do sends a request with body (JSON-encoded unless nil) and decodes a 2xx
// JSON answer into out (when not nil). Any other status is an *apiError.
func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	return c.doHeader(ctx, method, path, nil, body, out)
}

// doHeader is do with extra request headers.
func (c *client) doHeader(ctx context.Context, method, path string, header map[string]string, body, out any) error {
	raw, err := c.doRawHeader(ctx, method, path, header, body, "application/json")
	if err != nil || out == nil || len(bytes.TrimSpace(raw)) == 0 {
		return err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return &transportError{fmt.Errorf("%s %s: the broker's answer is not the expected JSON: %w", method, path, err)}
	}
	return nil
}

// doRaw is do without decoding: it returns the body of a 2xx answer.
func (c *client) doRaw(ctx context.Context, method, path string, body any, accept string) ([]byte, error) {
	return c.doRawHeader(ctx, method, path, nil, body, accept)
}

func (c *client) doRawHeader(ctx context.Context, method, path string, header map[string]string, body any, accept string) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, usagef("broker URL %q: %v", c.base, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", accept)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if c.cred.header == brokerapi.HeaderAuthorization {
		req.Header.Set(c.cred.header, "Bearer "+c.cred.value)
	} else if c.cred.header != "" {
		req.Header.Set(c.cred.header, c.cred.value)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, &transportError{fmt.Errorf("%s %s%s: %w", method, c.base, path, err)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, &transportError{fmt.Errorf("%s %s: read the answer: %w", method, path, err)}
	}
	if resp.StatusCode/100 == 2 {
		return raw, nil
	}
	if resp.StatusCode/100 == 3 {
		return nil, &redirectError{method: method, url: c.base + path, status: resp.StatusCode, location: brokerclient.QuoteLocation(resp.Header.Get("Location"), c.cred.value)}
	}
	ae := &apiError{status: resp.StatusCode}
	var eb brokerapi.ErrorBody
	if json.Unmarshal(raw, &eb) == nil && eb.Error.Code != "" {
		ae.ErrorDetail = eb.Error
	} else {
		ae.Code = "http_" + strings.ReplaceAll(strings.ToLower(http.StatusText(resp.StatusCode)), " ", "_")
		ae.Message = strings.TrimSpace(string(raw))
		if len(ae.Message) > 200 {
			ae.Message = ae.Message[:200] + "…"
		}
	}
	if ae.RequestID == "" {
		ae.RequestID = resp.Header.Get(brokerapi.HeaderRequestID)
	}
	if resp.StatusCode == http.StatusUnauthorized && c.cred.header == "" {
		ae.Message += " (irsactl found no token: set IRSA_TOKEN, IRSA_TOKEN_FILE or IRSA_API_KEY; see 'irsactl config')"
	}
	return nil, ae
}
