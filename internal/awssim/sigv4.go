package awssim

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	sigV4Algorithm = "AWS4-HMAC-SHA256"
	amzDateFormat  = "20060102T150405Z"
	maxClockSkew   = 15 * time.Minute
)

// sigV4Auth is a parsed "Authorization: AWS4-HMAC-SHA256 ..." header.
type sigV4Auth struct {
	AccessKeyID   string
	Date          string // yyyymmdd
	Region        string
	Service       string
	SignedHeaders []string
	Signature     string
}

func errSignature(format string, a ...any) *APIError {
	return senderErr(http.StatusForbidden, "SignatureDoesNotMatch", format, a...)
}

const signatureMismatchMsg = "The request signature we calculated does not match the signature you provided. " +
	"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."

func parseAuthorization(h string) (*sigV4Auth, *APIError) {
	incomplete := func(msg string) *APIError {
		return senderErr(http.StatusBadRequest, "IncompleteSignature", "%s", msg)
	}
	alg, rest, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || alg != sigV4Algorithm {
		return nil, incomplete("Authorization header requires the AWS4-HMAC-SHA256 algorithm.")
	}
	a := &sigV4Auth{}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, incomplete("Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters.")
		}
		switch k {
		case "Credential":
			f := strings.Split(v, "/")
			if len(f) != 5 || f[4] != "aws4_request" || f[0] == "" {
				return nil, incomplete("Credential should be scoped to a valid region and service.")
			}
			a.AccessKeyID, a.Date, a.Region, a.Service = f[0], f[1], f[2], f[3]
		case "SignedHeaders":
			a.SignedHeaders = strings.Split(v, ";")
		case "Signature":
			a.Signature = v
		}
	}
	if a.AccessKeyID == "" || len(a.SignedHeaders) == 0 || a.Signature == "" {
		return nil, incomplete("Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters.")
	}
	return a, nil
}

// authenticate verifies the request's SigV4 signature and returns the caller. service
// is "iam" or "sts". Requests without any signature get MissingAuthenticationToken.
func (s *Server) authenticate(r *http.Request, body []byte, service string) (*caller, *APIError) {
	h := r.Header.Get("Authorization")
	if h == "" {
		if r.URL.Query().Get("X-Amz-Signature") != "" {
			return nil, senderErr(http.StatusBadRequest, "InvalidRequest", "Pre-signed requests are not supported by this endpoint.")
		}
		return nil, senderErr(http.StatusForbidden, "MissingAuthenticationToken", "Request is missing Authentication Token")
	}
	auth, aerr := parseAuthorization(h)
	if aerr != nil {
		return nil, aerr
	}
	c, secret, aerr := s.lookupCredentials(auth.AccessKeyID, r.Header.Get("X-Amz-Security-Token"))
	if aerr != nil {
		return nil, aerr
	}
	if auth.Service != service {
		return nil, errSignature("Credential should be scoped to correct service: '%s'. ", service)
	}
	if auth.Region == "" {
		return nil, errSignature("Credential should be scoped to a valid region. ")
	}
	amzDate := r.Header.Get("X-Amz-Date")
	if amzDate == "" {
		return nil, senderErr(http.StatusBadRequest, "IncompleteSignature", "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
	}
	t, err := time.Parse(amzDateFormat, amzDate)
	if err != nil {
		return nil, senderErr(http.StatusBadRequest, "IncompleteSignature", "Date must be in ISO-8601 'basic format'.")
	}
	// Signatures are checked against the wall clock (the SDK signs with it), not the
	// simulator's possibly fake clock.
	if now := time.Now().UTC(); t.Before(now.Add(-maxClockSkew)) || t.After(now.Add(maxClockSkew)) {
		return nil, errSignature("Signature expired: %s is now earlier than %s (%s - 15 min.)",
			amzDate, now.Add(-maxClockSkew).Format(amzDateFormat), now.Format(amzDateFormat))
	}
	if auth.Date != amzDate[:8] {
		return nil, errSignature("Credential should be scoped to a valid date.")
	}
	signedHost := false
	for _, sh := range auth.SignedHeaders {
		if sh == "host" {
			signedHost = true
		}
	}
	if !signedHost {
		return nil, errSignature("%s", signatureMismatchMsg)
	}
	creq := canonicalRequest(r, body, auth.SignedHeaders)
	scope := auth.Date + "/" + auth.Region + "/" + auth.Service + "/aws4_request"
	sum := sha256.Sum256([]byte(creq))
	toSign := sigV4Algorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
	key := deriveSigningKey(secret, auth.Date, auth.Region, auth.Service)
	want := hex.EncodeToString(hmacSHA256(key, []byte(toSign)))
	if !hmac.Equal([]byte(want), []byte(strings.ToLower(auth.Signature))) {
		return nil, errSignature("%s", signatureMismatchMsg)
	}
	return c, nil
}

func canonicalRequest(r *http.Request, body []byte, signed []string) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	b.WriteString(escapePath(path))
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.Query()))
	b.WriteByte('\n')
	for _, name := range signed {
		b.WriteString(name)
		b.WriteByte(':')
		switch name {
		case "host":
			b.WriteString(stripExcessSpaces(r.Host))
		case "content-length":
			if v := r.Header.Get("Content-Length"); v != "" {
				b.WriteString(v)
			} else {
				b.WriteString(strconv.FormatInt(r.ContentLength, 10))
			}
		default:
			vals := r.Header.Values(name)
			for i, v := range vals {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(stripExcessSpaces(v))
			}
		}
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signed, ";"))
	b.WriteByte('\n')
	sum := sha256.Sum256(body)
	b.WriteString(hex.EncodeToString(sum[:]))
	return b.String()
}

func canonicalQuery(q url.Values) string {
	if len(q) == 0 {
		return ""
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		vals := append([]string(nil), q[k]...)
		sort.Strings(vals)
		ek := strings.ReplaceAll(url.QueryEscape(k), "+", "%20")
		for _, v := range vals {
			parts = append(parts, ek+"="+strings.ReplaceAll(url.QueryEscape(v), "+", "%20"))
		}
	}
	return strings.Join(parts, "&")
}

// escapePath percent-encodes everything but unreserved characters and '/', as the SDK
// does for non-S3 services (the already-escaped path is escaped again).
func escapePath(p string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if isUnreserved(c) || c == '/' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

func stripExcessSpaces(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func hmacSHA256(key, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(data)
	return m.Sum(nil)
}

func deriveSigningKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), []byte(date))
	k = hmacSHA256(k, []byte(region))
	k = hmacSHA256(k, []byte(service))
	return hmacSHA256(k, []byte("aws4_request"))
}
