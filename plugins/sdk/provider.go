package sdk

import (
	"context"
	"errors"
	"time"
)

// Header names that may carry a caller's credential.
const (
	HeaderAuthorization = "Authorization"
	HeaderDominoAPIKey  = "X-Domino-Api-Key"
)

// Credentials is what the caller presented. Token is the bearer token (without
// the "Bearer " prefix) or the API key; Header names which header carried it.
type Credentials struct {
	Token  string
	Header string
}

// String never prints the token.
func (c Credentials) String() string { return "Credentials{Header:" + c.Header + ", Token:<redacted>}" }

// Identity is who the caller is, as a provider established it.
type Identity struct {
	ID            string            `json:"id"`
	Username      string            `json:"username"`
	Email         string            `json:"email,omitempty"`
	Organizations []string          `json:"organizations"`
	Groups        []string          `json:"groups,omitempty"`
	Admin         bool              `json:"admin"`
	Attributes    map[string]string `json:"attributes,omitempty"`
	// Expiry is when this identity stops being valid (zero: unknown).
	Expiry time.Time `json:"expiry,omitempty"`
	// Provider names the identity provider that established this identity,
	// as the broker's configuration names it (policies see it as
	// input.identity.provider). The broker sets it; a provider leaves it
	// empty, and it does not cross the plugin protocol.
	Provider string `json:"provider,omitempty"`
}

// Info describes a provider.
type Info struct {
	Name         string
	Version      string
	Capabilities []string
}

// Provider establishes who is calling. Every method takes ctx first.
type Provider interface {
	Info(ctx context.Context) (Info, error)
	// Configure hands the provider its own YAML configuration; an invalid one
	// returns an error wrapping ErrInvalidConfig that names the field.
	Configure(ctx context.Context, config []byte) error
	// Authenticate returns the caller's identity, or an error wrapping
	// ErrUnauthenticated (bad or missing credentials) or ErrUnavailable (the
	// provider could not decide: backend down, timeout).
	Authenticate(ctx context.Context, creds Credentials) (Identity, error)
}

// Sentinel errors; they survive the plugin boundary so errors.Is works on the host.
var (
	ErrUnauthenticated = errors.New("unauthenticated")
	ErrInvalidConfig   = errors.New("invalid configuration")
	ErrUnavailable     = errors.New("identity provider unavailable")
)
