package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
)

// problem is a classified error, ready to be written.
type problem struct {
	status     int
	code       string
	message    string
	retryAfter int // seconds; 0 = no header
}

// classify is the one place that maps errors to HTTP. Errors arrive
// classified where they were understood (model.Classified); here a kind
// becomes a status and a Retry-After. The HTTP layer's own failures
// (malformed request, body too large, deadline) are classified here.
func classify(err error) problem {
	var (
		mbe  *http.MaxBytesError
		reqE *requestError
	)
	switch {
	case errors.As(err, &reqE):
		return problem{status: reqE.status, code: reqE.code, message: reqE.message}
	case errors.As(err, &mbe):
		return problem{status: http.StatusRequestEntityTooLarge, code: "body_too_large", message: "request body is larger than " + strconv.FormatInt(mbe.Limit, 10) + " bytes"}
	}
	kind, code, message := model.Classify(err)
	if kind == model.KindInternal {
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			return problem{status: http.StatusServiceUnavailable, code: "timeout", message: "the request took too long; try again", retryAfter: 2}
		case errors.Is(err, context.Canceled):
			return problem{status: http.StatusServiceUnavailable, code: "canceled", message: "the request was canceled", retryAfter: 1}
		}
	}
	status, retryAfter := httpStatus(kind)
	return problem{status: status, code: code, message: message, retryAfter: retryAfter}
}

// httpStatus is the status and Retry-After (seconds; 0 = none) of a kind.
func httpStatus(k model.Kind) (status, retryAfter int) {
	switch k {
	case model.KindInvalid:
		return http.StatusBadRequest, 0
	case model.KindUnauthenticated:
		return http.StatusUnauthorized, 0
	case model.KindForbidden:
		return http.StatusForbidden, 0
	case model.KindNotFound:
		return http.StatusNotFound, 0
	case model.KindConflict:
		return http.StatusConflict, 0
	case model.KindUpstream:
		return http.StatusBadGateway, 5
	case model.KindMisconfigured:
		return http.StatusBadGateway, 0
	case model.KindUnavailable:
		return http.StatusServiceUnavailable, 5
	case model.KindThrottled:
		return http.StatusServiceUnavailable, 2
	case model.KindPrecondition:
		return http.StatusPreconditionFailed, 0
	}
	return http.StatusInternalServerError, 0
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
	writeJSON(w, p.status, brokerapi.ErrorBody{Error: brokerapi.ErrorDetail{Code: p.code, Message: p.message, RequestID: RequestID(r.Context())}})
}
