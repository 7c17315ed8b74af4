package brokerclient

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
)

// Error is a non-200 answer of the broker, with its JSON error fields when it
// sent them.
type Error struct {
	Status     int           `json:"status"`
	Code       string        `json:"code,omitempty"`
	Message    string        `json:"message,omitempty"`
	RequestID  string        `json:"request_id,omitempty"`
	RetryAfter time.Duration `json:"-"`
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "broker answered HTTP %d", e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" (request " + e.RequestID + ")")
	}
	return b.String()
}

// Temporary reports whether retrying the same request may succeed without
// anyone changing anything: 408, 429 and 5xx. 401 is temporary too — the
// access-token proxy may hand out a valid token a moment later.
func (e *Error) Temporary() bool {
	switch {
	case e.Status == http.StatusRequestTimeout, e.Status == http.StatusTooManyRequests,
		e.Status == http.StatusUnauthorized, e.Status >= 500:
		return true
	}
	return false
}

// RedirectError is a 3xx answer of the broker URL. It is never followed: the
// request carries the user's and the pod's credentials, which go to the
// configured broker only.
type RedirectError struct {
	Status   int
	Location string // as sent (shortened, credentials redacted); may be empty
	URL      string // the configured URL that answered
}

func (e *RedirectError) Error() string {
	loc := e.Location
	if loc == "" {
		loc = "(no Location)"
	}
	return fmt.Sprintf("broker answered HTTP %d redirecting to %s; not followed: the credentials go only to the configured broker URL %s (point DOMINO_IRSA_ENDPOINT at the broker itself)",
		e.Status, loc, e.URL)
}

// maxLocation bounds a Location quoted in an error.
const maxLocation = 200

// QuoteLocation makes a Location header fit for an error: one line, bounded,
// without the request's credentials.
func QuoteLocation(loc string, secrets ...string) string {
	loc = redact(strings.Join(strings.Fields(loc), ""), secrets...)
	if len(loc) > maxLocation {
		loc = loc[:maxLocation] + "…"
	}
	return loc
}

// redact replaces every non-empty secret in s.
func redact(s string, secrets ...string) string {
	for _, v := range secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, "[redacted]")
		}
	}
	return s
}

// maxMessage bounds a non-JSON error body quoted in an error.
const maxMessage = 300

// parseError builds an *Error from a non-200 response body.
func parseError(resp *http.Response, body []byte, now time.Time) *Error {
	e := &Error{Status: resp.StatusCode, RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), now)}
	var doc brokerapi.ErrorBody
	if json.Unmarshal(body, &doc) == nil && (doc.Error.Code != "" || doc.Error.Message != "") {
		e.Code, e.Message, e.RequestID = doc.Error.Code, doc.Error.Message, doc.Error.RequestID
		return e
	}
	// Not our JSON (a proxy's HTML page, the legacy service): keep a short,
	// single-line excerpt so the user sees something.
	msg := strings.Join(strings.Fields(string(body)), " ")
	if len(msg) > maxMessage {
		msg = msg[:maxMessage] + "…"
	}
	e.Message = msg
	return e
}

// parseRetryAfter reads delay-seconds or an HTTP date; 0 when absent or invalid.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(min(n, 3600)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), time.Hour)
	}
	return 0
}
