package verify

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/hashicorp/go-hclog"

	"github.com/irsa-broker/irsa-broker/sidecar/awsprofile"
	"github.com/irsa-broker/irsa-broker/sidecar/backoff"
)

// STSAPI is the one STS call verification needs.
type STSAPI interface {
	AssumeRoleWithWebIdentity(ctx context.Context, in *sts.AssumeRoleWithWebIdentityInput, optFns ...func(*sts.Options)) (*sts.AssumeRoleWithWebIdentityOutput, error)
}

// TokenSource yields the pod's projected token, read afresh on every attempt.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// STSOptions configure NewSTS.
type STSOptions struct {
	Region string // default us-east-1
	// Endpoint overrides the STS endpoint (AWS_ENDPOINT_URL_STS).
	Endpoint   string
	HTTPClient aws.HTTPClient // default: NewHTTPClient()
}

// NewSTS builds an unsigned STS client (AssumeRoleWithWebIdentity needs no AWS
// credentials) without the SDK's own retries: Verifier retries by itself.
// Without o.HTTPClient it uses NewHTTPClient.
func NewSTS(o STSOptions) *sts.Client {
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	cfg := aws.Config{
		Region:      o.Region,
		Credentials: aws.AnonymousCredentials{},
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
		HTTPClient:  o.HTTPClient,
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = NewHTTPClient()
	}
	return sts.NewFromConfig(cfg, func(so *sts.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
		}
	})
}

// NewHTTPClient is the STS client's default HTTP client; callers keep it to
// close its idle connections at shutdown.
func NewHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 4
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// Options configure a Verifier.
type Options struct {
	STS   STSAPI
	Token TokenSource
	Clock backoff.Clock // default backoff.System
	// Retry is the policy between attempts; default 250 ms doubling to 2 s.
	Retry backoff.Policy
	// AttemptTimeout bounds one STS call (default 10 s).
	AttemptTimeout time.Duration
	// SessionName is the RoleSessionName (default irsa-sidecar-verify).
	SessionName string
	Logger      hclog.Logger
}

// Verifier checks source profiles against STS.
type Verifier struct {
	o   Options
	log hclog.Logger
}

// New returns a Verifier; STS and Token are required.
func New(o Options) (*Verifier, error) {
	if o.STS == nil || o.Token == nil {
		return nil, errors.New("verify: STS client and token source are required")
	}
	if o.Clock == nil {
		o.Clock = backoff.System
	}
	if o.Retry.Initial <= 0 {
		o.Retry = backoff.Policy{Initial: 250 * time.Millisecond, Max: 2 * time.Second, Multiplier: 2, Jitter: 0.3, Rand: o.Retry.Rand}
	}
	if o.AttemptTimeout <= 0 {
		o.AttemptTimeout = 10 * time.Second
	}
	if o.SessionName == "" {
		o.SessionName = "irsa-sidecar-verify"
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	return &Verifier{o: o, log: o.Logger}, nil
}

// Result is the outcome for one source profile.
type Result struct {
	Profile  string `json:"profile"`
	RoleARN  string `json:"role_arn"`
	OK       bool   `json:"ok"`
	Attempts int    `json:"attempts"`
	// Code and Message are AWS's own, from the last failed attempt.
	Code       string    `json:"code,omitempty"`
	Message    string    `json:"message,omitempty"`
	Seconds    float64   `json:"seconds"`
	VerifiedAt time.Time `json:"verified_at,omitzero"`
}

// AllOK reports whether every result succeeded.
func AllOK(rs []Result) bool {
	for _, r := range rs {
		if !r.OK {
			return false
		}
	}
	return true
}

// Verify checks every source concurrently until each succeeds, fails with an
// error that retrying cannot fix, or ctx ends (set the deadline on ctx).
func (v *Verifier) Verify(ctx context.Context, sources []awsprofile.Source) []Result {
	out := make([]Result, len(sources))
	var wg sync.WaitGroup
	for i, s := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = v.one(ctx, s)
		}()
	}
	wg.Wait()
	return out
}

func (v *Verifier) one(ctx context.Context, s awsprofile.Source) Result {
	start := v.o.Clock.Now()
	r := Result{Profile: s.Profile, RoleARN: s.RoleARN}
	log := v.log.With("profile", s.Profile, "role_arn", s.RoleARN)
	for attempt := 0; ; attempt++ {
		r.Attempts++
		err := v.attempt(ctx, s.RoleARN)
		r.Seconds = v.o.Clock.Now().Sub(start).Seconds()
		if err == nil {
			r.OK, r.Code, r.Message, r.VerifiedAt = true, "", "", v.o.Clock.Now()
			log.Info("verified with STS", "attempts", r.Attempts, "seconds", r.Seconds)
			return r
		}
		r.Code, r.Message = describe(err)
		if permanent(r.Code) {
			log.Warn("verification failed; not retrying", "code", r.Code, "message", r.Message)
			return r
		}
		log.Debug("STS refused; retrying (IAM propagation)", "attempt", r.Attempts, "code", r.Code, "message", r.Message)
		if err := backoff.Sleep(ctx, v.o.Clock, v.o.Retry.Delay(attempt, 0)); err != nil {
			if r.Code == "" && r.Message == "" {
				r.Message = err.Error()
			}
			log.Warn("verification deadline passed", "attempts", r.Attempts, "code", r.Code, "message", r.Message)
			return r
		}
	}
}

func (v *Verifier) attempt(ctx context.Context, roleARN string) error {
	tok, err := v.o.Token.Token(ctx)
	if err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, v.o.AttemptTimeout)
	defer cancel()
	// The credentials in the answer are dropped: only success matters.
	_, err = v.o.STS.AssumeRoleWithWebIdentity(actx, &sts.AssumeRoleWithWebIdentityInput{
		RoleArn:          aws.String(roleARN),
		RoleSessionName:  aws.String(v.o.SessionName),
		WebIdentityToken: aws.String(tok),
		DurationSeconds:  aws.Int32(900),
	})
	return err
}

// describe extracts AWS's code and message, or the plain error text.
func describe(err error) (code, msg string) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode(), ae.ErrorMessage()
	}
	return "", err.Error()
}

// permanent lists the STS errors no amount of waiting fixes: a malformed
// request. AccessDenied, InvalidIdentityToken, IDPCommunicationError and
// throttling are what IAM propagation and transient faults look like.
func permanent(code string) bool {
	switch code {
	case "ValidationError", "MalformedPolicyDocument", "PackedPolicyTooLarge", "RegionDisabledException":
		return true
	}
	return false
}
