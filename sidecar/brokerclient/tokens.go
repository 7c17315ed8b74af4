package brokerclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

// TokenSource yields a bearer credential. Implementations never put the token
// in an error.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
}

// maxTokenBytes bounds a token read from the proxy or a file.
const maxTokenBytes = 64 << 10

// ErrEmptyToken is a token source that answered with nothing.
var ErrEmptyToken = errors.New("empty token")

// ProxyToken fetches the user's token from Domino's API proxy:
// GET <BaseURL>/access-token, the body being the token.
type ProxyToken struct {
	BaseURL string
	Client  *http.Client // default http.DefaultClient
}

// Token implements TokenSource.
func (p ProxyToken) Token(ctx context.Context) (string, error) {
	u := strings.TrimRight(p.BaseURL, "/") + "/access-token"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", fmt.Errorf("access token: %w", err)
	}
	c := p.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", fmt.Errorf("access token: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenBytes))
	if err != nil {
		return "", fmt.Errorf("access token from %s: read body: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		// The body is not quoted: it might be a token after all.
		return "", fmt.Errorf("access token from %s: HTTP %d", u, resp.StatusCode)
	}
	tok := strings.TrimSpace(string(body))
	if tok == "" {
		return "", fmt.Errorf("access token from %s: %w", u, ErrEmptyToken)
	}
	return tok, nil
}

// FileToken reads a token from a file on every call (projected tokens rotate).
type FileToken struct {
	Path string
}

// Token implements TokenSource.
func (f FileToken) Token(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	fh, err := os.Open(f.Path)
	if err != nil {
		return "", fmt.Errorf("pod token: %w", err)
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxTokenBytes))
	if err != nil {
		return "", fmt.Errorf("pod token %s: %w", f.Path, err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("pod token %s: %w", f.Path, ErrEmptyToken)
	}
	return tok, nil
}

// StaticToken is a fixed token (tests, dev).
type StaticToken string

// Token implements TokenSource.
func (s StaticToken) Token(context.Context) (string, error) {
	if s == "" {
		return "", ErrEmptyToken
	}
	return string(s), nil
}

var (
	_ TokenSource = ProxyToken{}
	_ TokenSource = FileToken{}
	_ TokenSource = StaticToken("")
)
