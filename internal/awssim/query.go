package awssim

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	iamVersion   = "2010-05-08"
	stsVersion   = "2011-06-15"
	iamNamespace = "https://iam.amazonaws.com/doc/2010-05-08/"
	stsNamespace = "https://sts.amazonaws.com/doc/2011-06-15/"
)

// APIError is an AWS Query protocol error: it is rendered as
// <ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>.
type APIError struct {
	Status  int    // HTTP status code
	Code    string // e.g. "NoSuchEntity"
	Message string
	Sender  bool // Type Sender (client fault) or Receiver
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

func senderErr(status int, code, format string, a ...any) *APIError {
	return &APIError{Status: status, Code: code, Message: fmt.Sprintf(format, a...), Sender: true}
}

func errNoSuchRole(name string) *APIError {
	return senderErr(http.StatusNotFound, "NoSuchEntity", "The role with name %s cannot be found.", name)
}

func errValidation(format string, a ...any) *APIError {
	return senderErr(http.StatusBadRequest, "ValidationError", format, a...)
}

func errMissingParam(name string) *APIError {
	return senderErr(http.StatusBadRequest, "ValidationError",
		"1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null",
		lowerFirst(name))
}

func errThrottling() *APIError {
	return senderErr(http.StatusBadRequest, "Throttling", "Rate exceeded")
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

type errorResponse struct {
	XMLName   xml.Name  `xml:"ErrorResponse"`
	Xmlns     string    `xml:"xmlns,attr"`
	Error     errorBody `xml:"Error"`
	RequestID string    `xml:"RequestId"`
}

type errorBody struct {
	Type    string `xml:"Type"`
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

type responseMetadata struct {
	RequestID string `xml:"RequestId"`
}

// envelope is <{Action}Response xmlns=...><{Action}Result>...</><ResponseMetadata/></>.
// Result is a struct with its own XMLName ({Action}Result), or nil for empty results.
type envelope struct {
	XMLName  xml.Name
	Xmlns    string `xml:"xmlns,attr"`
	Result   any
	Metadata responseMetadata `xml:"ResponseMetadata"`
}

func writeXML(w http.ResponseWriter, status int, reqID string, v any) {
	out, err := xml.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("x-amzn-RequestId", reqID)
	w.Header().Set("Content-Length", strconv.Itoa(len(xml.Header)+len(out)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(out)
}

func writeResult(w http.ResponseWriter, reqID, action, ns string, result any) {
	writeXML(w, http.StatusOK, reqID, envelope{
		XMLName:  xml.Name{Local: action + "Response"},
		Xmlns:    ns,
		Result:   result,
		Metadata: responseMetadata{RequestID: reqID},
	})
}

func writeError(w http.ResponseWriter, reqID, ns string, e *APIError) {
	typ := "Sender"
	if !e.Sender {
		typ = "Receiver"
	}
	writeXML(w, e.Status, reqID, errorResponse{
		Xmlns:     ns,
		Error:     errorBody{Type: typ, Code: e.Code, Message: e.Message},
		RequestID: reqID,
	})
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// awsTime formats a timestamp as IAM and STS do (ISO 8601, UTC).
func awsTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// URLEncodePolicy percent-encodes a policy document the way IAM returns it from
// GetRole, ListRoles and GetRolePolicy (RFC 3986: everything but A-Z a-z 0-9 - _ . ~).
func URLEncodePolicy(doc string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(doc) * 2)
	for i := 0; i < len(doc); i++ {
		c := doc[i]
		if isUnreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

func isUnreserved(c byte) bool {
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		c == '-' || c == '_' || c == '.' || c == '~'
}

// memberList reads a Query-protocol list parameter: Name.member.1, Name.member.2, ...
func memberList(form map[string][]string, name string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := form[name+".member."+strconv.Itoa(i)]
		if !ok || len(v) == 0 {
			return out
		}
		out = append(out, v[0])
	}
}

// xmlList renders as <Name><member>..</member>...</Name>.
type xmlList struct {
	Members []string `xml:"member"`
}
