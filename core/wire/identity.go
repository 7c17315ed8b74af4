package wire

import (
	"context"
	"slices"

	"github.com/irsa-broker/irsa-broker/core/config"
	"github.com/irsa-broker/irsa-broker/core/identity"
)

// identity opens the identity providers behind the credential cache: the
// ordered list of --identity-providers, or the one provider of
// --identity-plugin; each is a plugin process of its own (its
// configuration, checksum pin, health checks and restarts), unless the edge
// replaces the one provider.
func (b *Broker) identity(ctx context.Context, e Edges) (*identity.Authenticator, error) {
	opts := identity.Options{TTL: b.cfg.IdentityCacheTTL, Logger: b.log, Metrics: b.Metrics}
	if e.Identity != nil {
		name := identity.DefaultName
		if info, err := e.Identity.Info(ctx); err == nil && identity.NamePattern.MatchString(info.Name) {
			name = info.Name
		}
		return identity.NewChain([]identity.Member{{Name: name, Provider: e.Identity}}, opts)
	}
	list, err := b.cfg.IdentityProviders()
	if err != nil {
		return nil, err
	}
	single := b.cfg.IdentityProvidersFile == ""
	names := make([]string, len(list))
	for i, ip := range list {
		names[i] = ip.Name
	}
	if err := identity.CheckNames(names); err != nil { // before any process starts
		return nil, err
	}
	members := make([]identity.Member, 0, len(list))
	for _, ip := range list {
		p, err := identity.Open(ctx, b.pluginOptions(ip, e, single))
		if err != nil {
			return nil, err
		}
		b.closers = append(b.closers, func() { p.Close() })
		members = append(members, identity.Member{Name: ip.Name, Provider: p, Headers: ip.Headers})
	}
	if !single {
		b.log.Info("identity providers, in the order credentials are offered", "providers", names)
	}
	return identity.NewChain(members, opts)
}

// pluginOptions are the plugin host's options for one provider. The edge's
// inline configuration stands in for --identity-config in the single form.
func (b *Broker) pluginOptions(ip config.IdentityProvider, e Edges, single bool) identity.PluginOptions {
	o := identity.PluginOptions{
		Name: ip.Plugin, Provider: ip.Name, SHA256: ip.SHA256, ConfigPath: ip.ConfigFile, Config: ip.Config,
		Logger: b.log, Metrics: b.Metrics, SocketDir: b.cfg.PluginDir, Env: slices.Concat(b.cfg.PluginEnv, ip.Env), Builtins: e.Builtins,
	}
	if single && e.IdentityConfig != nil {
		o.Config = e.IdentityConfig
	}
	return o
}
