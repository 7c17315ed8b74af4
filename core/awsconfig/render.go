package awsconfig

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/irsa-broker/irsa-broker/core/model"
)

// DefaultTokenFile is where EKS projects the workload's web-identity token.
const DefaultTokenFile = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"

// Role-chaining limits: the asset role is assumed from the proxy role's
// session, and STS caps chained sessions at one hour.
const (
	MinDurationSeconds = 900
	MaxDurationSeconds = 3600
)

// ErrInvalid is wrapped by every error Render returns.
var ErrInvalid = errors.New("invalid AWS config input")

// Options are the settings shared by all profiles. Zero values are omitted
// from the output (TokenFile defaults to DefaultTokenFile).
type Options struct {
	TokenFile string
	Region    string
	// RoleSessionName names the asset-role session (e.g. the username, so
	// CloudTrail shows who acted); STS grammar [\w+=,.@-]{2,64}. See
	// SessionName for turning an arbitrary name into one.
	RoleSessionName string
	// DurationSeconds of the asset-role session: 0 (SDK default) or
	// MinDurationSeconds..MaxDurationSeconds.
	DurationSeconds int
}

// Profile describes one rendered profile pair; its JSON is what /v2/map
// answers in "profiles".
type Profile struct {
	Name          string `json:"name"`           // the asset profile: [profile Name]
	SourceProfile string `json:"source_profile"` // the proxy profile: [profile src_Name]
	AssetRoleARN  string `json:"iam_role_arn"`
	ProxyRoleARN  string `json:"proxy_iam_role_arn"`
}

// Config is a rendered AWS config file.
type Config struct {
	Text     string
	Profiles []Profile
}

var (
	regionRE      = regexp.MustCompile(`^[a-z]{2,}(-[a-z0-9]+)+$`)
	sessionNameRE = regexp.MustCompile(`^[\w+=,.@-]{2,64}$`)
	unsafeNameRE  = regexp.MustCompile(`[^\w+=,.@-]+`)
)

// Render writes the AWS config for role pairs (UpdateTrustPolicy plays no
// part here), byte-compatible with the existing
// service. For each role it writes, with no blank lines:
//
//	[profile <name>]
//	source_profile = src_<name>
//	role_arn=<asset role ARN>
//	[profile src_<name>]
//	web_identity_token_file = <token file>
//	role_arn=<proxy role ARN>
//
// followed, when set, by "region = …", "role_session_name = …" and
// "duration_seconds = …" after the asset profile's role_arn, and by
// "region = …" after the proxy profile's role_arn. Profiles are sorted by name.
//
// Profile names. Identical pairs are collapsed. The name of a profile is its
// asset role's name, made unique deterministically:
//
//  1. the pairs are sorted by asset role ARN, then proxy role ARN;
//  2. in that order, the first pair of each role name takes the bare name;
//  3. every other pair (same role name in another account or path, or the
//     same asset role behind another proxy role), in the same order, takes the
//     first free name among "<name>-<account>", then
//     "<name>-<account>-<path>" (the path's segments joined by "-"), then that
//     followed by "-2", "-3", ….
//
// A name is free when neither it nor "src_"+name is already a profile (so a
// role called "src_x" cannot shadow the proxy profile of a role "x").
//
// Both ARNs of every pair must be IAM role ARNs, and option values must not be
// able to alter the file's structure: a newline, '[' or ']' (or any other
// character outside the option's grammar) is an error wrapping ErrInvalid.
func Render(roles []model.RolePair, o Options) (Config, error) {
	if err := o.validate(); err != nil {
		return Config{}, err
	}
	if o.TokenFile == "" {
		o.TokenFile = DefaultTokenFile
	}
	pairs, err := parsePairs(roles)
	if err != nil {
		return Config{}, err
	}
	profiles := assignNames(pairs)

	var b strings.Builder
	size := 0
	for _, p := range profiles { // one allocation for the whole file
		size += 2*len(p.Name) + len(p.SourceProfile) + len(p.AssetRoleARN) + len(p.ProxyRoleARN) + len(o.TokenFile) +
			2*len(o.Region) + len(o.RoleSessionName) + 200
	}
	b.Grow(size)
	line := func(parts ...string) { // no temporary strings
		for _, s := range parts {
			b.WriteString(s)
		}
	}
	for _, p := range profiles {
		line("[profile ", p.Name, "]\n")
		line("source_profile = ", p.SourceProfile, "\n")
		line("role_arn=", p.AssetRoleARN, "\n")
		if o.Region != "" {
			line("region = ", o.Region, "\n")
		}
		if o.RoleSessionName != "" {
			line("role_session_name = ", o.RoleSessionName, "\n")
		}
		if o.DurationSeconds != 0 {
			line("duration_seconds = ", strconv.Itoa(o.DurationSeconds), "\n")
		}
		line("[profile ", p.SourceProfile, "]\n")
		line("web_identity_token_file = ", o.TokenFile, "\n")
		line("role_arn=", p.ProxyRoleARN, "\n")
		if o.Region != "" {
			line("region = ", o.Region, "\n")
		}
	}
	return Config{Text: b.String(), Profiles: profiles}, nil
}

func (o Options) validate() error {
	if o.TokenFile != "" {
		if !strings.HasPrefix(o.TokenFile, "/") || strings.ContainsAny(o.TokenFile, "[]#;") ||
			strings.TrimSpace(o.TokenFile) != o.TokenFile || hasControl(o.TokenFile) {
			return fmt.Errorf("%w: token file %q: want an absolute path without control characters, brackets, '#' or ';'", ErrInvalid, o.TokenFile)
		}
	}
	if o.Region != "" && !regionRE.MatchString(o.Region) {
		return fmt.Errorf("%w: region %q: want a region name such as us-east-1", ErrInvalid, o.Region)
	}
	if o.RoleSessionName != "" && !sessionNameRE.MatchString(o.RoleSessionName) {
		return fmt.Errorf("%w: role session name %q: want 2 to 64 letters, digits or +=,.@_-", ErrInvalid, o.RoleSessionName)
	}
	if o.DurationSeconds != 0 && (o.DurationSeconds < MinDurationSeconds || o.DurationSeconds > MaxDurationSeconds) {
		return fmt.Errorf("%w: duration_seconds %d: want %d to %d (role chaining limit)", ErrInvalid, o.DurationSeconds, MinDurationSeconds, MaxDurationSeconds)
	}
	return nil
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

type pair struct {
	asset, proxy model.RoleARN
	assetS       string
	proxyS       string
}

// parsePairs validates, deduplicates and sorts roles.
func parsePairs(roles []model.RolePair) ([]pair, error) {
	seen := map[[2]string]bool{}
	out := make([]pair, 0, len(roles))
	for _, r := range roles {
		a, err := roleARNs.parse(r.IAMRoleARN)
		if err != nil {
			return nil, fmt.Errorf("%w: asset role: %w", ErrInvalid, err)
		}
		p, err := roleARNs.parse(r.ProxyIAMRoleARN)
		if err != nil {
			return nil, fmt.Errorf("%w: proxy role: %w", ErrInvalid, err)
		}
		key := [2]string{r.IAMRoleARN, r.ProxyIAMRoleARN}
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, pair{asset: a, proxy: p, assetS: r.IAMRoleARN, proxyS: r.ProxyIAMRoleARN})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].assetS != out[j].assetS {
			return out[i].assetS < out[j].assetS
		}
		return out[i].proxyS < out[j].proxyS
	})
	return out, nil
}

// maxCachedARNs bounds roleARNs: the roles of the mappings, and of the
// grants policies invent, are a bounded set far below it.
const maxCachedARNs = 4096

// roleARNs memoizes model.ParseRoleARN for Render. Every map renders its
// config (twice: before and after placement), parsing both ARNs of every
// pair, and the regular expressions of that parse were a quarter of an
// already-mapped map's CPU (BenchmarkMapAlreadyMapped's profile). The
// parse is a pure function of the string, so a valid ARN is parsed once;
// an invalid one is never kept (its error is built each time), and past
// maxCachedARNs entries new ARNs are parsed every time.
var roleARNs arnCache

type arnCache struct {
	m sync.Map // string → model.RoleARN
	n atomic.Int64
}

func (c *arnCache) parse(s string) (model.RoleARN, error) {
	if v, ok := c.m.Load(s); ok {
		return v.(model.RoleARN), nil
	}
	a, err := model.ParseRoleARN(s)
	if err != nil || c.n.Load() >= maxCachedARNs {
		return a, err
	}
	if _, loaded := c.m.LoadOrStore(s, a); !loaded {
		c.n.Add(1)
	}
	return a, nil
}

// assignNames implements the naming rule of Render and returns the profiles
// sorted by name.
func assignNames(pairs []pair) []Profile {
	names := make([]string, len(pairs))
	used := map[string]bool{}
	free := func(n string) bool { return !used[n] && !used["src_"+n] }
	take := func(i int, n string) {
		names[i] = n
		used[n] = true
		used["src_"+n] = true
	}
	// Pass 1: the first pair of each role name takes the bare name.
	firstOf := map[string]bool{}
	for i, p := range pairs {
		n := p.asset.Name
		if firstOf[n] {
			continue
		}
		firstOf[n] = true
		if free(n) {
			take(i, n)
		}
	}
	// Pass 2: everyone else, in the same order.
	for i, p := range pairs {
		if names[i] != "" {
			continue
		}
		withAccount := p.asset.Name + "-" + p.asset.AccountID
		withPath := withAccount
		if seg := strings.Trim(p.asset.Path, "/"); seg != "" {
			withPath += "-" + unsafeNameRE.ReplaceAllString(strings.ReplaceAll(seg, "/", "-"), "-")
		}
		switch {
		case free(withAccount):
			take(i, withAccount)
		case free(withPath):
			take(i, withPath)
		default:
			for k := 2; ; k++ {
				if n := withPath + "-" + strconv.Itoa(k); free(n) {
					take(i, n)
					break
				}
			}
		}
	}
	profiles := make([]Profile, len(pairs))
	for i, p := range pairs {
		profiles[i] = Profile{Name: names[i], AssetRoleARN: p.assetS, ProxyRoleARN: p.proxyS, SourceProfile: "src_" + names[i]}
	}
	sort.Slice(profiles, func(i, j int) bool { return profiles[i].Name < profiles[j].Name })
	return profiles
}

// SessionName turns name (e.g. a username) into a valid role session name:
// characters outside [\w+=,.@-] become '-', the result is cut to 64
// characters, and a name shorter than 2 becomes "" (omit the setting).
func SessionName(name string) string {
	s := unsafeNameRE.ReplaceAllString(name, "-")
	if len(s) > 64 {
		s = s[:64]
	}
	if len(s) < 2 {
		return ""
	}
	return s
}
