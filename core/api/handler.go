package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/hashicorp/go-hclog"

	"github.com/irsa-broker/irsa-broker/core/broker"
	"github.com/irsa-broker/irsa-broker/core/metrics"
	"github.com/irsa-broker/irsa-broker/core/model"
	"github.com/irsa-broker/irsa-broker/core/policy"
	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// MaxBodyBytes is the largest request body accepted (413 above it).
const MaxBodyBytes = 1 << 20

// Check is one readiness check; a non-nil error makes /readyz answer 503.
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
}

// Service is what the HTTP layer asks of the broker's use cases
// (*broker.Service). Every error it returns is classified
// (model.Classified) or is an internal error.
type Service interface {
	Authenticate(ctx context.Context, c sdk.Credentials) (sdk.Identity, error)
	Authorize(ctx context.Context, caller sdk.Identity, action, requestID string) error
	Map(ctx context.Context, req broker.MapRequest) (broker.MapResult, error)
	MyGrants(ctx context.Context, caller sdk.Identity, requestID string) (policy.Decision, model.Snapshot, error)
	Mappings(ctx context.Context, caller sdk.Identity, requestID string) (model.Snapshot, error)
	PutMapping(ctx context.Context, caller sdk.Identity, m model.Mapping, requestID string) error
	DeleteMapping(ctx context.Context, caller sdk.Identity, org, requestID string) error
	// ApplyMappings writes a batch of mapping changes in one step (admin).
	ApplyMappings(ctx context.Context, caller sdk.Identity, b model.Batch, requestID string) (revision string, err error)
	CreateServiceAccount(ctx context.Context, caller sdk.Identity, name, requestID string) error
	DeleteServiceAccount(ctx context.Context, caller sdk.Identity, name, requestID string) error
	// Trust lists the proxy-role pools and what their members hold (admin).
	Trust(ctx context.Context, caller sdk.Identity, requestID string) (broker.TrustState, error)
}

// Options configure the HTTP handler.
type Options struct {
	Service Service
	Metrics *metrics.Metrics
	Logger  hclog.Logger
	// Timeout bounds each request (default 30s).
	Timeout time.Duration
	// Ready lists the readiness checks of /readyz.
	Ready []Check
	// Status, optional, returns the components' status for /v2/status
	// (admins only: it may name files and quote errors).
	Status func() any
	// Decisions, optional, serves GET /v2/decisions (admins; 404 when nil).
	Decisions Decisions
	// LegacyGetShape is the shape of GET /role_mappings and
	// /my_role_mappings: LegacyShapeSeed (default) or LegacyShapeV18.
	LegacyGetShape string
	// Extra mounts additional routes (the dev stack's /dev endpoints).
	Extra func(r chi.Router)
}

type handler struct {
	svc Service
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
		writeProblem(w, r, problem{status: http.StatusNotFound, code: "not_found", message: "no route for " + clip(r.Method) + " " + clip(r.URL.Path)})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, problem{status: http.StatusMethodNotAllowed, code: "method_not_allowed", message: clip(r.Method) + " is not allowed on " + clip(r.URL.Path)})
	})

	r.Get(brokerapi.PathHealthz, h.healthz)
	r.Get(brokerapi.PathReadyz, h.readyz)
	h.legacyRoutes(r)
	h.v2Routes(r)
	h.decisionRoutes(r)
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
		id := r.Header.Get(brokerapi.HeaderRequestID)
		if !requestIDRE.MatchString(id) {
			id = newRequestID()
		}
		w.Header().Set(brokerapi.HeaderRequestID, id)
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
		method := metricMethod(r.Method)
		h.o.Metrics.HTTPDuration.WithLabelValues(route, method, strconv.Itoa(status)).Observe(d.Seconds())
		if route == brokerapi.PathHealthz || route == brokerapi.PathReadyz {
			return
		}
		h.log.Info("request", "request_id", RequestID(r.Context()), "method", method, "route", route,
			"status", status, "bytes", ww.BytesWritten(), "duration_ms", float64(d.Microseconds())/1000, "remote", r.RemoteAddr)
	})
}

// metricMethod bounds the method label: any caller can send any token as a
// method, so only the standard ones are kept and everything else is "other".
// Routes are chi's patterns ("unmatched" otherwise) and statuses are the
// handler's own, so every label of the HTTP histogram has a fixed set of values.
func metricMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// clip shortens caller-controlled text echoed in an error message.
func clip(s string) string {
	const max = 128
	if len(s) <= max {
		return s
	}
	return strings.ToValidUTF8(s[:max], "") + "…"
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

// limits bounds the body size and the time of each request. The deadline
// covers reading the body too: a caller trickling its body is cut off at the
// request timeout, not at the server's longer ReadTimeout.
func (h *handler) limits(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(h.o.Timeout))
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
	if a := r.Header.Get(brokerapi.HeaderAuthorization); a != "" {
		scheme, tok, ok := strings.Cut(a, " ")
		tok = strings.TrimSpace(tok)
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
			return sdk.Credentials{}, &requestError{status: http.StatusUnauthorized, code: "unauthenticated", message: "Authorization must be 'Bearer <token>'"}
		}
		return sdk.Credentials{Token: tok, Header: brokerapi.HeaderAuthorization}, nil
	}
	if k := strings.TrimSpace(r.Header.Get(brokerapi.HeaderDominoAPIKey)); k != "" {
		return sdk.Credentials{Token: k, Header: brokerapi.HeaderDominoAPIKey}, nil
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
//
// Keys are exact: a key repeated in any object is refused (encoding/json
// would let the last one win), and so is a key that only matches one of v's
// fields case-insensitively (encoding/json would take "RUN_ID" for run_id).
func decodeJSON(r *http.Request, v any, strict bool) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return &requestError{status: http.StatusRequestTimeout, code: "body_timeout", message: "the request body was not received in time"}
		}
		return badRequest("invalid_json", "cannot read the request body")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return badRequest("invalid_json", "request body is empty; send a JSON object")
	}
	if err := checkKeys(body, fieldNames(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te) && te.Field == "":
			return badRequest("invalid_json", "request body must be a JSON object")
		case errors.As(err, &te):
			return badRequest("invalid_field", fmt.Sprintf("field %q must be a %s", te.Field, te.Type.String()))
		default:
			return badRequest("invalid_json", "request body is not valid JSON: "+err.Error())
		}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badRequest("invalid_json", "request body must be a single JSON object")
	}
	return nil
}

// checkKeys walks the JSON document and refuses a key repeated within one
// object (at any depth) and, in the top-level object, a key that is not one
// of fields but equals one of them case-insensitively. Malformed JSON is
// left to the decoder's error.
func checkKeys(body []byte, fields []string) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	type frame struct {
		object bool
		keys   map[string]bool
		key    bool // the next token of an object is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if _, delim := tok.(json.Delim); !delim && top != nil && top.object && top.key {
			k, _ := tok.(string)
			if top.keys[k] {
				return badRequest("duplicate_field", fmt.Sprintf("field %q appears more than once", clip(k)))
			}
			top.keys[k] = true
			if len(stack) == 1 && !slices.Contains(fields, k) {
				for _, f := range fields {
					if strings.EqualFold(f, k) {
						return badRequest("invalid_field", fmt.Sprintf("unknown field %q (field names are case-sensitive: %q)", clip(k), f))
					}
				}
			}
			top.key = false
			continue
		}
		if top != nil && top.object {
			top.key = true // this token is the value; a key comes next
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, keys: map[string]bool{}, key: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if len(stack) > 0 && stack[len(stack)-1].object {
				stack[len(stack)-1].key = true
			}
		}
	}
}

// fieldNames lists the JSON names of the fields of the struct v points to
// (none for maps and other types, whose keys are matched exactly anyway).
func fieldNames(v any) []string {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var names []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
	}
	return names
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

// runChecks runs the readiness checks; details maps each failing check to
// its error.
func (h *handler) runChecks(ctx context.Context) (ready bool, details map[string]string) {
	details = map[string]string{}
	ready = true
	for _, c := range h.o.Ready {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := c.Fn(cctx)
		cancel()
		if err != nil {
			ready = false
			details[c.Name] = err.Error()
		} else {
			details[c.Name] = "ok"
		}
	}
	return ready, details
}

// readyz answers the kubelet's probe. It is unauthenticated, so it says only
// which check fails; the reason goes to the log and to the admins' /v2/status.
func (h *handler) readyz(w http.ResponseWriter, r *http.Request) {
	ready, details := h.runChecks(r.Context())
	checks := make(map[string]string, len(details))
	for name, d := range details {
		checks[name] = "ok"
		if d != "ok" {
			checks[name] = "failing"
			h.log.Warn("readiness check failing", "check", name, "error", d)
		}
	}
	status, word := http.StatusOK, "ready"
	if !ready {
		status, word = http.StatusServiceUnavailable, "not ready"
	}
	writeJSON(w, status, map[string]any{"status": word, "checks": checks})
}

// status is /v2/status (admins): readiness with its reasons and the
// components' own status (the serving policy, a refused reload).
func (h *handler) status(w http.ResponseWriter, r *http.Request) error {
	id, err := h.caller(r)
	if err != nil {
		return err
	}
	if err := h.svc.Authorize(r.Context(), id, broker.ActionStatusRead, RequestID(r.Context())); err != nil {
		return err
	}
	ready, details := h.runChecks(r.Context())
	body := map[string]any{"ready": ready, "checks": details}
	if h.o.Status != nil {
		body["components"] = h.o.Status()
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}
