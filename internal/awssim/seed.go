package awssim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"sigs.k8s.io/yaml"
)

// Seed is the content of a seed file (YAML or JSON): accounts with their access keys,
// OIDC providers and roles, plus initial knob settings. See testdata/seed.yaml.
type Seed struct {
	Accounts []SeedAccount `json:"accounts"`
	Knobs    *SeedKnobs    `json:"knobs,omitempty"`
}

// SeedAccount is one AWS account.
type SeedAccount struct {
	ID            string             `json:"id"`                   // 12 digits
	Quota         int                `json:"quota,omitempty"`      // AssumeRolePolicySizeQuota, 0 → 2048
	RolesQuota    int                `json:"rolesQuota,omitempty"` // roles per account, 0 → 1000
	AccessKeys    []SeedAccessKey    `json:"accessKeys,omitempty"`
	OIDCProviders []SeedOIDCProvider `json:"oidcProviders,omitempty"`
	Policies      []SeedPolicy       `json:"policies,omitempty"` // customer managed, created before the roles
	Roles         []SeedRole         `json:"roles,omitempty"`
}

// SeedPolicy is a customer managed policy; its ARN is
// arn:aws:iam::<account>:policy<path><name>.
type SeedPolicy struct {
	Name        string   `json:"name"`
	Path        string   `json:"path,omitempty"`
	Description string   `json:"description,omitempty"`
	Document    Document `json:"document"`
}

// SeedAccessKey is a long-term access key of the account root, or of a user when User
// is set.
type SeedAccessKey struct {
	ID            string   `json:"id"`
	Secret        string   `json:"secret"`
	User          string   `json:"user,omitempty"`
	DeniedActions []string `json:"deniedActions,omitempty"` // e.g. iam:UpdateAssumeRolePolicy
}

// SeedOIDCProvider registers an issuer URL (https://, or http:// with AllowHTTPIssuers).
type SeedOIDCProvider struct {
	URL       string   `json:"url"`
	ClientIDs []string `json:"clientIDs"`
}

// SeedRole is a role with its trust policy and inline permission policies.
type SeedRole struct {
	Name               string              `json:"name"`
	Path               string              `json:"path,omitempty"`
	Description        string              `json:"description,omitempty"`
	MaxSessionDuration int                 `json:"maxSessionDuration,omitempty"`
	TrustPolicy        Document            `json:"trustPolicy"`
	InlinePolicies     map[string]Document `json:"inlinePolicies,omitempty"`
	// ManagedPolicies are ARNs of managed policies (of this seed or created before) to attach.
	ManagedPolicies     []string          `json:"managedPolicies,omitempty"`
	PermissionsBoundary string            `json:"permissionsBoundary,omitempty"` // a managed policy ARN
	Tags                map[string]string `json:"tags,omitempty"`
}

// seedTags turns a seed's tag map into tags sorted by key.
func seedTags(m map[string]string) []tag {
	out := make([]tag, 0, len(m))
	for _, k := range sortedKeys(m) {
		out = append(out, tag{key: k, value: m[k]})
	}
	return out
}

// SeedKnobs are initial knob settings; map keys are action names ("" = default).
type SeedKnobs struct {
	Latency            map[string]Duration     `json:"latency,omitempty"`
	Throttle           map[string]SeedThrottle `json:"throttle,omitempty"`
	FailureProbability map[string]float64      `json:"failureProbability,omitempty"`
	PropagationDelay   Duration                `json:"propagationDelay,omitempty"`
}

// SeedThrottle is a token bucket.
type SeedThrottle struct {
	Rate  float64 `json:"rate"`
	Burst int     `json:"burst"`
}

// Document is a policy document in a seed: either a JSON/YAML object or a string
// holding JSON. It is kept as JSON text.
type Document string

// UnmarshalJSON accepts a string (taken verbatim) or any other JSON value (compacted).
func (d *Document) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return fmt.Errorf("policy document: %w", err)
		}
		*d = Document(s)
		return nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return fmt.Errorf("policy document: %w", err)
	}
	*d = Document(buf.String())
	return nil
}

// Duration is a time.Duration written as a Go duration string ("50ms") or a number of
// seconds.
type Duration time.Duration

// UnmarshalJSON parses "1.5s"-style strings or numbers of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration: %w", err)
		}
		*d = Duration(v)
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("duration %s: want a string like \"50ms\" or seconds", b)
	}
	*d = Duration(f * float64(time.Second))
	return nil
}

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// LoadSeed reads a YAML or JSON seed file; unknown fields are errors.
func LoadSeed(path string) (*Seed, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read seed: %w", err)
	}
	return ParseSeed(b)
}

// ParseSeed parses YAML or JSON seed content.
func ParseSeed(b []byte) (*Seed, error) {
	var seed Seed
	if err := yaml.UnmarshalStrict(b, &seed); err != nil {
		return nil, fmt.Errorf("parse seed: %w", err)
	}
	return &seed, nil
}

// ApplySeed creates everything the seed describes. Existing roles get the seed's trust
// policy; existing OIDC providers are kept. Errors name the offending entry.
func (s *Server) ApplySeed(seed *Seed) error {
	if seed == nil {
		return nil
	}
	for _, a := range seed.Accounts {
		if !accountIDRe.MatchString(a.ID) {
			return fmt.Errorf("seed: account id %q: %w", a.ID, ErrInvalidArgument)
		}
		s.AddAccount(a.ID, a.Quota)
		if a.RolesQuota < 0 {
			return fmt.Errorf("seed: account %s roles quota %d: %w", a.ID, a.RolesQuota, ErrInvalidArgument)
		}
		if a.RolesQuota > 0 {
			s.SetRolesQuota(a.ID, a.RolesQuota)
		}
		for _, p := range a.Policies {
			if _, aerr := s.createPolicy(a.ID, p.Name, p.Path, string(p.Document), p.Description); aerr != nil && aerr.Code != "EntityAlreadyExists" {
				return fmt.Errorf("seed: account %s policy %s: %w", a.ID, p.Name, aerr)
			}
		}
		for _, k := range a.AccessKeys {
			if err := s.AddUserAccessKey(a.ID, k.User, k.ID, k.Secret, k.DeniedActions...); err != nil {
				return fmt.Errorf("seed: account %s key %s: %w", a.ID, k.ID, err)
			}
		}
		for _, p := range a.OIDCProviders {
			if _, aerr := s.createOIDCProvider(a.ID, p.URL, p.ClientIDs, nil); aerr != nil && aerr.Code != "EntityAlreadyExists" {
				return fmt.Errorf("seed: account %s provider %s: %w", a.ID, p.URL, aerr)
			}
		}
		for _, r := range a.Roles {
			_, aerr := s.createRole(a.ID, roleSpec{name: r.Name, path: r.Path, trust: string(r.TrustPolicy),
				description: r.Description, maxSession: r.MaxSessionDuration, boundary: r.PermissionsBoundary, tags: seedTags(r.Tags)})
			if aerr != nil && aerr.Code == "EntityAlreadyExists" {
				aerr = s.updateTrust(a.ID, r.Name, string(r.TrustPolicy))
			}
			if aerr != nil {
				return fmt.Errorf("seed: account %s role %s: %w", a.ID, r.Name, aerr)
			}
			for _, n := range sortedKeys(r.InlinePolicies) {
				if aerr := s.putRolePolicy(a.ID, r.Name, n, string(r.InlinePolicies[n])); aerr != nil {
					return fmt.Errorf("seed: account %s role %s policy %s: %w", a.ID, r.Name, n, aerr)
				}
			}
			for _, arn := range r.ManagedPolicies {
				if aerr := s.attachRolePolicy(a.ID, r.Name, arn); aerr != nil {
					return fmt.Errorf("seed: account %s role %s managed policy %s: %w", a.ID, r.Name, arn, aerr)
				}
			}
		}
	}
	if k := seed.Knobs; k != nil {
		for a, d := range k.Latency {
			s.SetLatency(a, time.Duration(d))
		}
		for a, t := range k.Throttle {
			s.SetThrottle(a, t.Rate, t.Burst)
		}
		for a, p := range k.FailureProbability {
			if p < 0 || p > 1 {
				return fmt.Errorf("seed: failure probability %v for %q: %w", p, a, ErrInvalidArgument)
			}
			s.SetFailureProbability(a, p)
		}
		s.SetPropagationDelay(time.Duration(k.PropagationDelay))
	}
	return nil
}

// asError converts a possibly nil *APIError to an error without the typed-nil trap.
func asError(e *APIError) error {
	if e == nil {
		return nil
	}
	return e
}
