package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/irsa-broker/irsa-broker/core/broker"
	"github.com/irsa-broker/irsa-broker/core/iam"
	"github.com/irsa-broker/irsa-broker/core/mapping"
	"github.com/irsa-broker/irsa-broker/core/trust"
	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// ErrorBody is the JSON shape of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the content of an error response.
type ErrorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id,omitempty"`
}

// problem is a classified error, ready to be written.
type problem struct {
	status     int
	code       string
	message    string
	retryAfter int // seconds; 0 = no header
}

// classify is the one place that maps errors to HTTP. Messages are written for
// callers: they name what is wrong and never carry credentials.
func classify(err error) problem {
	var (
		be   *broker.Error
		ve   *mapping.ValidationError
		mbe  *http.MaxBytesError
		ie   *iam.Error
		se   *trust.SizeError
		nme  *trust.NoManagedStatementError
		rme  *trust.RoleMismatchError
		ure  *trust.UnusableRoleError
		reqE *requestError
	)
	switch {
	case errors.As(err, &reqE):
		return problem{status: reqE.status, code: reqE.code, message: reqE.message}
	case errors.As(err, &mbe):
		return problem{status: http.StatusRequestEntityTooLarge, code: "body_too_large", message: "request body is larger than " + strconv.FormatInt(mbe.Limit, 10) + " bytes"}
	case errors.As(err, &be):
		p := problem{code: be.Code, message: be.Message}
		switch be.Kind {
		case broker.KindInvalid:
			p.status = http.StatusBadRequest
		case broker.KindUnauthenticated:
			p.status = http.StatusUnauthorized
		case broker.KindForbidden:
			p.status = http.StatusForbidden
		case broker.KindNotFound:
			p.status = http.StatusNotFound
		case broker.KindConflict:
			p.status = http.StatusConflict
		case broker.KindUpstream:
			p.status, p.retryAfter = http.StatusBadGateway, 5
		default:
			p.status, p.retryAfter = http.StatusServiceUnavailable, 5
		}
		// A wrapped typed error (say, IAM behind an upstream error) knows better.
		if be.Err != nil && (p.status >= 500) {
			if inner := classify(be.Err); inner.status != http.StatusInternalServerError {
				return inner
			}
		}
		return p
	case errors.As(err, &ve):
		return problem{status: http.StatusBadRequest, code: "invalid_mapping", message: ve.Error()}
	case errors.Is(err, mapping.ErrNotFound):
		return problem{status: http.StatusNotFound, code: "mapping_not_found", message: err.Error()}
	case errors.Is(err, mapping.ErrUnavailable):
		return problem{status: http.StatusServiceUnavailable, code: "mapping_store_unavailable", message: "the role-mapping store is unavailable", retryAfter: 5}
	case errors.Is(err, sdk.ErrUnauthenticated):
		return problem{status: http.StatusUnauthorized, code: "unauthenticated", message: "missing or invalid credentials"}
	case errors.Is(err, sdk.ErrUnavailable):
		return problem{status: http.StatusServiceUnavailable, code: "identity_unavailable", message: "the identity provider is unavailable", retryAfter: 5}
	case errors.As(err, &se):
		return problem{status: http.StatusConflict, code: "trust_policy_too_large", message: se.Error()}
	case errors.As(err, &ure):
		return problem{status: http.StatusConflict, code: "proxy_role_unusable", message: err.Error()}
	case errors.As(err, &rme):
		return problem{status: http.StatusConflict, code: "proxy_role_mismatch", message: rme.Error()}
	case errors.As(err, &nme):
		return problem{status: http.StatusBadGateway, code: "trust_policy_unmanaged", message: nme.Error()}
	case errors.Is(err, trust.ErrMalformedDocument):
		// The proxy role's policy as IAM returned it could not be read.
		return problem{status: http.StatusBadGateway, code: "trust_policy_malformed", message: err.Error()}
	case errors.As(err, &ie):
		p := problem{status: http.StatusBadGateway, message: ie.Error()}
		switch ie.Kind {
		case iam.KindAccessDenied:
			p.code = "iam_access_denied"
		case iam.KindNoSuchEntity:
			p.code = "iam_no_such_role"
		case iam.KindLimitExceeded:
			p.status, p.code = http.StatusConflict, "trust_policy_too_large"
		case iam.KindMalformedPolicy:
			p.code = "iam_malformed_policy"
		case iam.KindInvalidInput:
			p.code = "iam_invalid_input"
		case iam.KindThrottled:
			p.status, p.code, p.retryAfter = http.StatusServiceUnavailable, "iam_throttled", 2
		case iam.KindUnavailable:
			p.status, p.code, p.retryAfter = http.StatusServiceUnavailable, "iam_unavailable", 5
		default:
			p.code, p.retryAfter = "iam_error", 5
		}
		return p
	case errors.Is(err, context.DeadlineExceeded):
		return problem{status: http.StatusServiceUnavailable, code: "timeout", message: "the request took too long; try again", retryAfter: 2}
	case errors.Is(err, context.Canceled):
		return problem{status: http.StatusServiceUnavailable, code: "canceled", message: "the request was canceled", retryAfter: 1}
	}
	return problem{status: http.StatusInternalServerError, code: "internal", message: "internal error"}
}

// requestError is a malformed request detected by the HTTP layer.
type requestError struct {
	status  int
	code    string
	message string
}

func (e *requestError) Error() string { return e.message }

func badRequest(code, msg string) error {
	return &requestError{status: http.StatusBadRequest, code: code, message: msg}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

func writeProblem(w http.ResponseWriter, r *http.Request, p problem) {
	if p.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(p.retryAfter))
	}
	writeJSON(w, p.status, ErrorBody{Error: ErrorDetail{Code: p.code, Message: p.message, RequestID: RequestID(r.Context())}})
}
