package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/hashicorp/go-hclog"

	"github.com/irsa-broker/irsa-broker/core/broker"
	"github.com/irsa-broker/irsa-broker/core/metrics"
	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// MaxBodyBytes is the largest request body accepted (413 above it).
const MaxBodyBytes = 1 << 20

// HeaderPodToken carries the pod's projected service-account token.
const HeaderPodToken = "X-Irsa-Pod-Token"

// Check is one readiness check; a non-nil error makes /readyz answer 503.
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
}

// Options configure the HTTP handler.
type Options struct {
	Service *broker.Service
	Metrics *metrics.Metrics
	Logger  hclog.Logger
	// Timeout bounds each request (default 30s).
	Timeout time.Duration
	// Ready lists the readiness checks of /readyz.
	Ready []Check
	// Extra mounts additional routes (the dev stack's /dev endpoints).
	Extra func(r chi.Router)
}

type handler struct {
	svc *broker.Service
	log hclog.Logger
	o   Options
}

// NewHandler builds the broker's router.
func NewHandler(o Options) http.Handler {
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Metrics == nil {
		o.Metrics = metrics.New()
	}
	h := &handler{svc: o.Service, log: o.Logger.Named("http"), o: o}
	r := chi.NewRouter()
	r.Use(h.requestID, h.observe, h.recoverer, h.limits)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, problem{status: http.StatusNotFound, code: "not_found", message: "no route for " + r.Method + " " + r.URL.Path})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, problem{status: http.StatusMethodNotAllowed, code: "method_not_allowed", message: r.Method + " is not allowed on " + r.URL.Path})
	})

	r.Get("/healthz", h.healthz)
	r.Get("/readyz", h.readyz)
	h.legacyRoutes(r)
	r.Route("/v2", h.v2Routes)
	if o.Extra != nil {
		o.Extra(r)
	}
	return r
}

type ctxKey int

const requestIDKey ctxKey = 1

// RequestID returns the request id of ctx ("" outside a request).
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// requestID takes a well-formed X-Request-Id from the caller or makes one, and
// echoes it in the response.
func (h *handler) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !requestIDRE.MatchString(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

// observe logs one line per request and records the latency histogram.
func (h *handler) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r)
		route := chi.RouteContext(r.Context()).RoutePattern()
		if route == "" {
			route = "unmatched"
		}
		status := ww.Status()
		if status == 0 {
			status = http.StatusOK
		}
		d := time.Since(start)
		h.o.Metrics.HTTPDuration.WithLabelValues(route, r.Method, strconv.Itoa(status)).Observe(d.Seconds())
		if route == "/healthz" || route == "/readyz" {
			return
		}
		h.log.Info("request", "request_id", RequestID(r.Context()), "method", r.Method, "route", route,
			"status", status, "bytes", ww.BytesWritten(), "duration_ms", float64(d.Microseconds())/1000, "remote", r.RemoteAddr)
	})
}

// recoverer turns a panic into a JSON 500; the stack goes to the log only.
func (h *handler) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				h.log.Error("panic serving request", "request_id", RequestID(r.Context()), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				writeProblem(w, r, problem{status: http.StatusInternalServerError, code: "internal", message: "internal error"})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// limits bounds the body size and the time of each request.
func (h *handler) limits(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		ctx, cancel := context.WithTimeout(r.Context(), h.o.Timeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// handlerFunc is a handler that returns its error; handle writes it.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (h *handler) handle(fn handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			h.fail(w, r, err)
		}
	}
}

// fail writes err as a JSON error and logs it with its detail.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	p := classify(err)
	if p.status >= 500 {
		h.log.Error("request failed", "request_id", RequestID(r.Context()), "status", p.status, "code", p.code, "error", err)
	} else {
		h.log.Debug("request refused", "request_id", RequestID(r.Context()), "status", p.status, "code", p.code, "error", err)
	}
	writeProblem(w, r, p)
}

// credentials reads the caller's credential from Authorization: Bearer or X-Domino-Api-Key.
func credentials(r *http.Request) (sdk.Credentials, error) {
	if a := r.Header.Get(sdk.HeaderAuthorization); a != "" {
		scheme, tok, ok := strings.Cut(a, " ")
		tok = strings.TrimSpace(tok)
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
			return sdk.Credentials{}, &requestError{status: http.StatusUnauthorized, code: "unauthenticated", message: "Authorization must be 'Bearer <token>'"}
		}
		return sdk.Credentials{Token: tok, Header: sdk.HeaderAuthorization}, nil
	}
	if k := strings.TrimSpace(r.Header.Get(sdk.HeaderDominoAPIKey)); k != "" {
		return sdk.Credentials{Token: k, Header: sdk.HeaderDominoAPIKey}, nil
	}
	return sdk.Credentials{}, &requestError{status: http.StatusUnauthorized, code: "unauthenticated", message: "no credentials: send Authorization: Bearer <token> or X-Domino-Api-Key"}
}

// caller authenticates the request.
func (h *handler) caller(r *http.Request) (sdk.Identity, error) {
	c, err := credentials(r)
	if err != nil {
		return sdk.Identity{}, err
	}
	return h.svc.Authenticate(r.Context(), c)
}

// decodeJSON reads exactly one JSON object into v. strict rejects unknown
// fields. The Content-Type is not checked: clients of the existing service
// (curl -d among them) send JSON under other types, and the body decides.
func decodeJSON(r *http.Request, v any, strict bool) error {
	dec := json.NewDecoder(r.Body)
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &mbe):
			return err
		case errors.Is(err, io.EOF):
			return badRequest("invalid_json", "request body is empty; send a JSON object")
		case errors.As(err, &te) && te.Field == "":
			return badRequest("invalid_json", "request body must be a JSON object")
		case errors.As(err, &te):
			return badRequest("invalid_field", fmt.Sprintf("field %q must be a %s", te.Field, te.Type.String()))
		default:
			return badRequest("invalid_json", "request body is not valid JSON: "+err.Error())
		}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return badRequest("invalid_json", "request body must be a single JSON object")
	}
	return nil
}

// wantsJSON: the client asked for JSON and did not also accept plain text
// (legacy clients send */* or text/plain and get the legacy text).
func wantsJSON(r *http.Request) bool {
	a := r.Header.Get("Accept")
	return strings.Contains(a, "application/json") && !strings.Contains(a, "text/plain")
}

func (h *handler) healthz(w http.ResponseWriter, r *http.Request) {
	if wantsJSON(r) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "Healthy"})
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = io.WriteString(w, "{'status': 'Healthy'}")
}

func (h *handler) readyz(w http.ResponseWriter, r *http.Request) {
	checks := map[string]string{}
	ready := true
	for _, c := range h.o.Ready {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		err := c.Fn(ctx)
		cancel()
		if err != nil {
			ready = false
			checks[c.Name] = err.Error()
		} else {
			checks[c.Name] = "ok"
		}
	}
	status, word := http.StatusOK, "ready"
	if !ready {
		status, word = http.StatusServiceUnavailable, "not ready"
	}
	writeJSON(w, status, map[string]any{"status": word, "checks": checks})
}
