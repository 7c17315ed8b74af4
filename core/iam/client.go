package iam

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	awsiam "github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults for Options fields left zero.
const (
	DefaultRegion         = "us-east-1"
	DefaultCallTimeout    = 20 * time.Second
	DefaultMaxAttempts    = 8
	DefaultRetryBaseDelay = 100 * time.Millisecond
	DefaultMaxBackoff     = 5 * time.Second
	DefaultQuotaFallback  = 2048
	DefaultQuotaTTL       = time.Hour
)

// Options configures New. Zero values take the defaults above.
type Options struct {
	// Region signs the requests (IAM is global; us-east-1 when empty and
	// the default chain has none).
	Region string
	// Endpoint overrides the IAM endpoint (e.g. the simulator). When empty the
	// SDK's own resolution applies, including AWS_ENDPOINT_URL_IAM.
	Endpoint string
	// Credentials; nil uses the SDK's default credential chain.
	Credentials aws.CredentialsProvider
	// HTTPClient overrides the SDK's HTTP client (tests, custom CAs).
	HTTPClient aws.HTTPClient

	// CallTimeout bounds one call including all its retries.
	CallTimeout time.Duration
	// MaxAttempts per call (first attempt included).
	MaxAttempts int
	// RetryBaseDelay is the base of the SDK's exponential, fully jittered
	// backoff for transient errors (throttling errors use the SDK's own 1s
	// base); MaxBackoff caps one delay, throttled or not.
	RetryBaseDelay, MaxBackoff time.Duration

	// RetryMode is aws.RetryModeStandard (the default: the SDK's standard
	// retryer, whose backoff base is larger for throttling) or
	// aws.RetryModeAdaptive (the same plus the SDK's client-side send rate,
	// which drops while IAM throttles and recovers slowly after: under
	// random throttling of half the calls, 20 calls took 26 s instead of
	// 0.5 s against the simulator, and the rate is shared by all roles).
	RetryMode aws.RetryMode

	// QuotaFallback is the trust-policy size quota assumed when
	// GetAccountSummary is not permitted (AccessDenied).
	QuotaFallback int
	// QuotaTTL is how long the quota read from GetAccountSummary is cached.
	QuotaTTL time.Duration

	Logger hclog.Logger
	// Registerer, if set, receives call latency and error metrics.
	Registerer prometheus.Registerer
}

// Role is what GetRole returns, with the trust policy already URL-decoded.
type Role struct {
	ARN, Name, Path string
	// ID is IAM's RoleId: a role deleted and created again under the same
	// name has another.
	ID          string
	TrustPolicy string
	// Tags, from GetRole and CreateRole only (ListRoles returns none).
	Tags map[string]string
}

// Client is the narrow IAM client. It is safe for concurrent use.
type Client struct {
	api     *awsiam.Client
	log     hclog.Logger
	timeout time.Duration

	quotaFallback int
	quotaTTL      time.Duration
	now           func() time.Time

	quotaMu      sync.Mutex
	quota        int
	quotaExpires time.Time
}

// New builds a Client. It reads the shared AWS configuration (environment,
// files) but makes no call.
func New(ctx context.Context, opts Options) (*Client, error) {
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = DefaultCallTimeout
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.RetryBaseDelay <= 0 {
		opts.RetryBaseDelay = DefaultRetryBaseDelay
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	switch opts.RetryMode {
	case "":
		opts.RetryMode = aws.RetryModeStandard
	case aws.RetryModeAdaptive, aws.RetryModeStandard:
	default:
		return nil, fmt.Errorf("iam: unknown retry mode %q", opts.RetryMode)
	}
	if opts.QuotaFallback <= 0 {
		opts.QuotaFallback = DefaultQuotaFallback
	}
	if opts.QuotaTTL <= 0 {
		opts.QuotaTTL = DefaultQuotaTTL
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}

	var loadOpts []func(*config.LoadOptions) error
	if opts.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(opts.Region))
	}
	if opts.Credentials != nil {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(opts.Credentials))
	}
	if opts.HTTPClient != nil {
		loadOpts = append(loadOpts, config.WithHTTPClient(opts.HTTPClient))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("iam: loading AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}

	retryer := newRetryer(opts)
	var apiOptions []func(*awsiam.Options)
	apiOptions = append(apiOptions, func(o *awsiam.Options) {
		o.Retryer = retryer
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
		}
	})
	if opts.Registerer != nil {
		m, err := newMetrics(opts.Registerer)
		if err != nil {
			return nil, err
		}
		apiOptions = append(apiOptions, awsiam.WithAPIOptions(m.addMiddleware))
	}

	return &Client{
		api:           awsiam.NewFromConfig(cfg, apiOptions...),
		log:           opts.Logger.Named("iam"),
		timeout:       opts.CallTimeout,
		quotaFallback: opts.QuotaFallback,
		quotaTTL:      opts.QuotaTTL,
		now:           time.Now,
	}, nil
}

// newRetryer is the SDK's standard retryer (retry.NewStandard: full-jitter
// exponential backoff from RetryBaseDelay, from 1s for throttling errors,
// each delay capped at MaxBackoff), wrapped in the SDK's adaptive mode
// (client-side rate limiting that tightens on throttling) when
// RetryModeAdaptive is asked for. The standard retry quota is disabled: the
// broker's writes are few (coalesced), and a shared quota would only turn
// throttling into hard errors.
func newRetryer(opts Options) aws.Retryer {
	standard := func(so *retry.StandardOptions) {
		so.MaxAttempts = opts.MaxAttempts
		so.MaxBackoff = opts.MaxBackoff
		so.BaseDelay = opts.RetryBaseDelay
		so.RateLimiter = ratelimit.None
	}
	if opts.RetryMode == aws.RetryModeStandard {
		return retry.NewStandard(standard)
	}
	return retry.NewAdaptiveMode(func(o *retry.AdaptiveModeOptions) {
		o.StandardOptions = append(o.StandardOptions, standard)
	})
}

func (c *Client) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}

// GetRole returns the role with its trust policy URL-decoded.
func (c *Client) GetRole(ctx context.Context, roleName string) (Role, error) {
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	out, err := c.api.GetRole(ctx, &awsiam.GetRoleInput{RoleName: aws.String(roleName)})
	if err != nil {
		return Role{}, classify(err, "iam:GetRole", roleName)
	}
	if out.Role == nil {
		return Role{}, &Error{Kind: KindUnknown, Action: "iam:GetRole", Role: roleName, Err: errors.New("response has no role")}
	}
	doc, err := DecodePolicy(aws.ToString(out.Role.AssumeRolePolicyDocument))
	if err != nil {
		return Role{}, &Error{Kind: KindMalformedPolicy, Action: "iam:GetRole", Role: roleName, Err: err}
	}
	var tags map[string]string
	for _, t := range out.Role.Tags {
		if tags == nil {
			tags = map[string]string{}
		}
		tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return Role{
		ARN:         aws.ToString(out.Role.Arn),
		Name:        aws.ToString(out.Role.RoleName),
		Path:        aws.ToString(out.Role.Path),
		ID:          aws.ToString(out.Role.RoleId),
		TrustPolicy: doc,
		Tags:        tags,
	}, nil
}

// UpdateTrustPolicy replaces the role's trust policy (UpdateAssumeRolePolicy).
func (c *Client) UpdateTrustPolicy(ctx context.Context, roleName, doc string) error {
	ctx, cancel := c.callCtx(ctx)
	defer cancel()
	_, err := c.api.UpdateAssumeRolePolicy(ctx, &awsiam.UpdateAssumeRolePolicyInput{
		RoleName:       aws.String(roleName),
		PolicyDocument: aws.String(doc),
	})
	if err != nil {
		return classify(err, "iam:UpdateAssumeRolePolicy", roleName)
	}
	return nil
}

// TrustPolicySizeQuota returns the account's AssumeRolePolicySizeQuota from
// GetAccountSummary, cached for QuotaTTL. When the call is denied, it logs a
// warning and returns (and caches) QuotaFallback; other failures are returned
// (a stale cached value is served instead when there is one).
func (c *Client) TrustPolicySizeQuota(ctx context.Context) (int, error) {
	c.quotaMu.Lock()
	defer c.quotaMu.Unlock()
	now := c.now()
	if c.quota > 0 && now.Before(c.quotaExpires) {
		return c.quota, nil
	}
	cctx, cancel := c.callCtx(ctx)
	defer cancel()
	out, err := c.api.GetAccountSummary(cctx, &awsiam.GetAccountSummaryInput{})
	if err != nil {
		e := classify(err, "iam:GetAccountSummary", "")
		switch {
		case e.Kind == KindAccessDenied:
			c.log.Warn("cannot read the trust-policy size quota; using the configured fallback",
				"fallback", c.quotaFallback, "error", e.Error())
			c.quota, c.quotaExpires = c.quotaFallback, now.Add(c.quotaTTL)
			return c.quota, nil
		case c.quota > 0:
			c.log.Warn("cannot refresh the trust-policy size quota; using the cached value",
				"quota", c.quota, "error", e.Error())
			return c.quota, nil
		}
		return 0, e
	}
	q := int(out.SummaryMap[string(types.SummaryKeyTypeAssumeRolePolicySizeQuota)])
	if q <= 0 {
		c.log.Warn("GetAccountSummary has no AssumeRolePolicySizeQuota; using the configured fallback",
			"fallback", c.quotaFallback)
		q = c.quotaFallback
	}
	c.quota, c.quotaExpires = q, now.Add(c.quotaTTL)
	return q, nil
}

// DecodePolicy undoes the URL encoding IAM applies to policy documents in
// its responses (RFC 3986 percent-encoding). A document that already looks
// like JSON is returned unchanged, so a non-encoding endpoint works too.
func DecodePolicy(s string) (string, error) {
	if t := strings.TrimSpace(s); t == "" || strings.HasPrefix(t, "{") {
		return s, nil
	}
	d, err := url.PathUnescape(s)
	if err != nil {
		return "", fmt.Errorf("decoding policy document: %w", err)
	}
	return d, nil
}
