package builtin

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/irsa-broker/irsa-broker/plugins/domino"
	"github.com/irsa-broker/irsa-broker/plugins/oidc"
	"github.com/irsa-broker/irsa-broker/plugins/sdk"
	"github.com/irsa-broker/irsa-broker/plugins/static"
)

// registry maps a provider name to its constructor.
var registry = map[string]func(log hclog.Logger) sdk.Provider{
	domino.Name: func(log hclog.Logger) sdk.Provider { return domino.New(log) },
	oidc.Name:   func(log hclog.Logger) sdk.Provider { return oidc.New(log) },
	static.Name: func(log hclog.Logger) sdk.Provider { return static.New(static.WithLogger(log)) },
}

// Names lists the built-in providers, sorted.
func Names() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// New returns the unconfigured built-in provider called name.
func New(name string, log hclog.Logger) (sdk.Provider, error) {
	mk, ok := registry[name]
	if !ok {
		return nil, fmt.Errorf("no built-in identity provider %q (built in: %s)", name, strings.Join(Names(), ", "))
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return mk(log), nil
}

// Serve serves the built-in provider name as a plugin until the host stops
// it; it logs hclog JSON to stderr.
func Serve(name string) error {
	log := sdk.NewLogger("identity-" + name)
	p, err := New(name, log)
	if err != nil {
		return err
	}
	sdk.ServeWith(p, sdk.ServeOptions{Logger: log})
	return nil
}
