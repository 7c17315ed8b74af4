package sidecar

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/irsa-broker/irsa-broker/internal/atomicfile"
	"github.com/irsa-broker/irsa-broker/internal/brokerapi"
	"github.com/irsa-broker/irsa-broker/sidecar/awsprofile"
	"github.com/irsa-broker/irsa-broker/sidecar/backoff"
	"github.com/irsa-broker/irsa-broker/sidecar/brokerclient"
	"github.com/irsa-broker/irsa-broker/sidecar/podinfo"
	"github.com/irsa-broker/irsa-broker/sidecar/verify"
)

// Stages of a refresh, as they appear in /status, logs and metrics.
const (
	StagePodInfo     = "podinfo"
	StageAccessToken = "access_token"
	StagePodToken    = "pod_token"
	StageBroker      = "broker"
	StageParse       = "parse"
	StageValidate    = "validate"
	StageWrite       = "write"
	StageVerify      = "verify"
)

// Mapper is the broker call the agent needs (brokerclient.Client implements it).
type Mapper interface {
	Map(ctx context.Context, r brokerapi.MapRequest) (string, error)
}

// Deps are the agent's replaceable collaborators; zero values build the real ones.
type Deps struct {
	Broker Mapper         // default: brokerclient over HTTPS from Config
	STS    verify.STSAPI  // default: verify.NewSTS from Config
	Clock  backoff.Clock  // default: backoff.System
	Rand   func() float64 // jitter source; default math/rand/v2
	// VerifyRetry overrides the pause policy between STS attempts.
	VerifyRetry backoff.Policy
}

// ErrorInfo describes a failed refresh for /status, /refresh and logs. It never
// carries a token.
type ErrorInfo struct {
	Stage     string    `json:"stage"`
	Message   string    `json:"message"`
	Status    int       `json:"status,omitempty"` // the broker's HTTP status
	Code      string    `json:"code,omitempty"`   // the broker's or AWS's error code
	RequestID string    `json:"request_id,omitempty"`
	At        time.Time `json:"at"`

	retryAfter time.Duration
	permanent  bool // retrying cannot help without someone changing something
	err        error
}

func (e *ErrorInfo) Error() string { return e.Stage + ": " + e.Message }
func (e *ErrorInfo) Unwrap() error { return e.err }

// Outcome is the result of one refresh.
type Outcome struct {
	OK           bool            `json:"ok"`
	Changed      bool            `json:"changed"`
	Profiles     []string        `json:"profiles"`
	Verification []verify.Result `json:"verification,omitempty"`
	Error        *ErrorInfo      `json:"error,omitempty"`
	Seconds      float64         `json:"seconds"`
}

// Agent keeps $AWS_CONFIG_FILE current and verified.
type Agent struct {
	cfg      Config
	log      hclog.Logger
	broker   Mapper
	verifier *verify.Verifier
	clock    backoff.Clock
	rand     func() float64
	retry    backoff.Policy
	rules    awsprofile.Rules
	m        *metrics
	idle     []interface{ CloseIdleConnections() }

	mu       sync.Mutex
	base     context.Context // lifetime of refreshes (Run's ctx)
	inflight *call
	st       state
}

type call struct {
	done    chan struct{}
	out     Outcome
	callers int // Refresh calls sharing this one, under Agent.mu (tests read it)
}

type state struct {
	info         podinfo.Info
	profiles     []string
	content      string // last content written or confirmed on disk
	written      bool
	verifiedFor  *string // content that passed verification
	verification []verify.Result
	ready        bool
	lastAttempt  time.Time
	lastSuccess  time.Time
	lastChange   time.Time
	lastErr      *ErrorInfo
	failures     int
	nextRefresh  time.Time
}

// New builds an agent; it reads the CA bundle, hence ctx.
func New(ctx context.Context, cfg Config, log hclog.Logger, d Deps) (*Agent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sidecar configuration: %w", err)
	}
	a := &Agent{cfg: cfg, log: log, broker: d.Broker, clock: d.Clock, rand: d.Rand, m: newMetrics(), base: context.Background()}
	if a.clock == nil {
		a.clock = backoff.System
	}
	if a.rand == nil {
		a.rand = rand.Float64
	}
	a.retry = backoff.Policy{Initial: cfg.BackoffInitial, Max: cfg.BackoffMax, Multiplier: 2, Jitter: 0.5, Rand: a.rand}
	a.rules = awsprofile.Rules{TokenFiles: []string{cfg.WorkloadTokenFile}}
	if cfg.WorkloadTokenFile == "" {
		a.rules.TokenFiles = []string{cfg.TokenFile}
		if cfg.TokenFile != DefaultTokenFile {
			a.rules.TokenFiles = append(a.rules.TokenFiles, DefaultTokenFile)
		}
	}
	if a.broker == nil {
		hc, err := brokerclient.NewHTTPClient(brokerclient.TLSOptions{CAFile: cfg.CAFile, InsecureSkipVerify: cfg.InsecureSkipTLSVerify, Timeout: cfg.RequestTimeout}, log)
		if err != nil {
			return nil, err
		}
		proxy := &http.Client{Timeout: 10 * time.Second, Transport: http.DefaultTransport.(*http.Transport).Clone()}
		a.idle = append(a.idle, hc, proxy)
		bc, err := brokerclient.New(brokerclient.Options{
			Endpoint: cfg.BrokerEndpoint, HTTPClient: hc,
			Access: brokerclient.ProxyToken{BaseURL: cfg.APIProxy, Client: proxy},
			Pod:    brokerclient.FileToken{Path: cfg.TokenFile},
			Logger: log,
		})
		if err != nil {
			return nil, err
		}
		a.broker = bc
	}
	if cfg.Verify {
		stsAPI := d.STS
		if stsAPI == nil {
			hc := verify.NewHTTPClient()
			a.idle = append(a.idle, hc)
			stsAPI = verify.NewSTS(verify.STSOptions{Region: cfg.Region, Endpoint: cfg.STSEndpoint, HTTPClient: hc})
		}
		v, err := verify.New(verify.Options{STS: stsAPI, Token: brokerclient.FileToken{Path: cfg.TokenFile},
			Clock: a.clock, Retry: d.VerifyRetry, Logger: log.Named("verify")})
		if err != nil {
			return nil, err
		}
		a.verifier = v
	}
	return a, nil
}

// Close releases the agent's idle connections (to the broker, the API proxy
// and STS). The agent stays usable.
func (a *Agent) Close() {
	for _, c := range a.idle {
		c.CloseIdleConnections()
	}
}

// Ready reports whether a config has been written and verified (or verification is off).
func (a *Agent) Ready() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.st.ready
}

func (a *Agent) setBase(ctx context.Context) {
	a.mu.Lock()
	a.base = ctx
	a.mu.Unlock()
}

// Refresh fetches, writes and verifies now. Concurrent calls share the refresh
// in flight; it runs on the agent's lifetime context, so one caller giving up
// does not cancel it for the others.
func (a *Agent) Refresh(ctx context.Context) Outcome {
	a.mu.Lock()
	c := a.inflight
	if c == nil {
		c = &call{done: make(chan struct{})}
		a.inflight = c
		base := a.base
		go func() {
			out := a.refresh(base)
			a.mu.Lock()
			a.inflight = nil
			a.mu.Unlock()
			c.out = out
			close(c.done)
		}()
	}
	c.callers++
	a.mu.Unlock()
	select {
	case <-c.done:
		return c.out
	case <-ctx.Done():
		return Outcome{Error: &ErrorInfo{Stage: "request", Message: "gave up waiting for the refresh: " + ctx.Err().Error(), At: a.clock.Now(), err: ctx.Err()}}
	}
}

func (a *Agent) refresh(ctx context.Context) Outcome {
	start := a.clock.Now()
	a.mu.Lock()
	a.st.lastAttempt = start
	a.mu.Unlock()
	out := a.doRefresh(ctx)
	out.Seconds = a.clock.Now().Sub(start).Seconds()
	a.m.duration.Observe(out.Seconds)

	a.mu.Lock()
	defer a.mu.Unlock()
	if out.OK {
		a.st.failures = 0
		a.st.lastSuccess = a.clock.Now()
		a.m.refreshes.WithLabelValues("success").Inc()
		a.m.lastSuccess.Set(float64(a.st.lastSuccess.UnixNano()) / 1e9)
	} else {
		a.st.failures++
		a.st.lastErr = out.Error
		a.m.refreshes.WithLabelValues("failure").Inc()
		a.m.errors.WithLabelValues(out.Error.Stage).Inc()
		a.logError(out.Error, a.st.failures)
	}
	if out.Profiles == nil {
		out.Profiles = append([]string{}, a.st.profiles...)
	}
	return out
}

func (a *Agent) logError(e *ErrorInfo, failures int) {
	args := []any{"stage", e.Stage, "error", e.Message, "consecutive_failures", failures}
	if e.Status != 0 {
		args = append(args, "status", e.Status)
	}
	if e.Code != "" {
		args = append(args, "code", e.Code)
	}
	if e.RequestID != "" {
		args = append(args, "request_id", e.RequestID)
	}
	if a.st.written {
		args = append(args, "config", "last good file kept")
	}
	a.log.Error("refresh failed", args...)
}

func (a *Agent) fail(stage string, err error) Outcome {
	e := &ErrorInfo{Stage: stage, Message: err.Error(), At: a.clock.Now(), err: err}
	var be *brokerclient.Error
	var re *brokerclient.RedirectError
	var te *brokerclient.TokenError
	var ie *podinfo.InvalidError
	var se *podinfo.SyntaxError
	switch {
	case errors.As(err, &be):
		e.Status, e.Code, e.RequestID, e.retryAfter = be.Status, be.Code, be.RequestID, be.RetryAfter
		e.permanent = !be.Temporary()
	case errors.As(err, &re):
		// Following it would need someone to change the broker URL.
		e.Status, e.permanent = re.Status, true
	case errors.As(err, &te):
		e.Stage = te.Source
	case errors.As(err, &ie), errors.As(err, &se):
		e.permanent = true
	case stage == StageParse, stage == StageValidate:
		e.permanent = true
	}
	return Outcome{Error: e}
}

func (a *Agent) doRefresh(ctx context.Context) Outcome {
	info, err := podinfo.Load(ctx, a.cfg.PodInfoPath)
	if err != nil {
		return a.fail(StagePodInfo, err)
	}
	a.mu.Lock()
	a.st.info = info
	a.mu.Unlock()

	text, err := a.broker.Map(ctx, brokerapi.MapRequest{RunID: info.RunID, WorkloadType: info.WorkloadType})
	if err != nil {
		return a.fail(StageBroker, err)
	}
	checked, err := awsprofile.Validate(text, a.rules)
	var se *awsprofile.SyntaxError
	switch {
	case errors.As(err, &se):
		return a.fail(StageParse, fmt.Errorf("the broker's AWS config is malformed; keeping the last good file: %w", err))
	case err != nil:
		return a.fail(StageValidate, fmt.Errorf("%w; nothing written (a config file in place is kept)", err))
	}
	var checks []atomicfile.Check
	if len(checked.Config.Profiles) == 0 {
		// "No grants" may start a pod without roles; it never wipes a config
		// that has profiles (a redirected or truncated answer looks the same).
		if fi, err := os.Stat(a.cfg.ConfigFile); err == nil && fi.Size() > 0 {
			return a.fail(StageValidate, fmt.Errorf("refused AWS config: the broker answered with no profiles; an empty answer never replaces a config with profiles, %s (%d bytes) is kept", a.cfg.ConfigFile, fi.Size()))
		}
	} else {
		// The AWS SDK reads the very file that is about to replace the config
		// and must see exactly the validated profiles.
		checks = append(checks, func(ctx context.Context, tmp string) error { return awsprofile.ConfirmWithSDK(ctx, tmp, checked) })
	}
	changed, err := atomicfile.WriteIfChanged(ctx, a.cfg.ConfigFile, []byte(text), 0o644, checks...)
	var re *awsprofile.RejectError
	switch {
	case errors.As(err, &re):
		return a.fail(StageValidate, fmt.Errorf("%w; nothing written (a config file in place is kept)", err))
	case err != nil:
		return a.fail(StageWrite, err)
	}
	names, sources := checked.Profiles, checked.Sources
	if names == nil {
		names = []string{}
	}
	now := a.clock.Now()

	a.mu.Lock()
	a.st.written, a.st.content, a.st.profiles = true, text, names
	if changed {
		a.st.lastChange = now
	}
	needVerify := a.verifier != nil && (a.st.verifiedFor == nil || *a.st.verifiedFor != text)
	if a.verifier == nil {
		a.st.ready = true
	}
	a.mu.Unlock()
	a.m.profiles.Set(float64(len(names)))
	if changed {
		a.m.writes.Inc()
		a.log.Info("AWS config written", "file", a.cfg.ConfigFile, "run_id", info.RunID, "profiles", strings.Join(names, ","))
	} else {
		a.log.Debug("AWS config unchanged", "file", a.cfg.ConfigFile, "profiles", len(names))
	}
	out := Outcome{OK: true, Changed: changed, Profiles: names}

	if needVerify {
		vctx, cancel := context.WithTimeout(ctx, a.cfg.VerifyDeadline)
		results := a.verifier.Verify(vctx, sources)
		cancel()
		out.Verification = results
		for _, r := range results {
			if r.OK {
				a.m.verifies.WithLabelValues("success").Inc()
				a.m.verifyTime.Observe(r.Seconds)
			} else {
				a.m.verifies.WithLabelValues("failure").Inc()
			}
		}
		a.mu.Lock()
		a.st.verification = results
		if verify.AllOK(results) {
			t := text
			a.st.verifiedFor = &t
			a.st.ready = true
		}
		a.mu.Unlock()
		if !verify.AllOK(results) {
			o := a.fail(StageVerify, verifyError(results))
			o.Changed, o.Profiles, o.Verification = changed, names, results
			for _, r := range results {
				if !r.OK && r.Code != "" {
					o.Error.Code = r.Code
					break
				}
			}
			return o
		}
	} else if a.verifier != nil {
		a.mu.Lock()
		out.Verification = a.st.verification
		a.mu.Unlock()
	}
	if a.Ready() {
		a.m.ready.Set(1)
	}
	return out
}

func verifyError(rs []verify.Result) error {
	var parts []string
	for _, r := range rs {
		if r.OK {
			continue
		}
		msg := r.Message
		if r.Code != "" {
			msg = r.Code + ": " + msg
		}
		parts = append(parts, fmt.Sprintf("%s (%s) not accepted by STS after %d attempts: %s", r.Profile, r.RoleARN, r.Attempts, msg))
	}
	return errors.New(strings.Join(parts, "; "))
}

// Run refreshes until ctx ends: every RefreshInterval (±10%) after a success,
// with capped exponential backoff (honouring Retry-After) after a failure.
func (a *Agent) Run(ctx context.Context) error {
	a.setBase(ctx)
	for attempt := 0; ; {
		out := a.Refresh(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var d time.Duration
		if out.OK {
			attempt = 0
			d = time.Duration(float64(a.cfg.RefreshInterval) * (0.9 + 0.2*a.rand()))
		} else {
			d = a.retry.Delay(attempt, out.Error.retryAfter)
			attempt++
		}
		a.mu.Lock()
		a.st.nextRefresh = a.clock.Now().Add(d)
		a.mu.Unlock()
		a.log.Debug("next refresh scheduled", "in", d.String())
		if err := backoff.Sleep(ctx, a.clock, d); err != nil {
			return nil
		}
	}
}

// Once refreshes until it succeeds (nil), hits an error that retrying cannot
// fix, or ctx ends; errors name the stage and the broker's or AWS's message.
func (a *Agent) Once(ctx context.Context) error {
	a.setBase(ctx)
	for attempt := 0; ; attempt++ {
		out := a.Refresh(ctx)
		if out.OK {
			return nil
		}
		if out.Error.permanent || out.Error.Stage == StageVerify {
			return out.Error
		}
		if err := backoff.Sleep(ctx, a.clock, a.retry.Delay(attempt, out.Error.retryAfter)); err != nil {
			return fmt.Errorf("gave up after %d attempts: %w", attempt+1, out.Error)
		}
	}
}
