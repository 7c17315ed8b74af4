package sdk

import (
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
)

// ProtocolVersion is the newest plugin protocol this SDK speaks. The host and
// the plugin negotiate the highest version both know (go-plugin's
// VersionedPlugins); version 1 is the proto in proto/identity/v1.
const ProtocolVersion = 1

// PluginName is the name under which the identity provider is dispensed.
const PluginName = "identity"

// LogLevelEnv is set by the host to its own log level; NewLogger honors it.
const LogLevelEnv = "IRSA_PLUGIN_LOG_LEVEL"

// Handshake is the go-plugin handshake. The magic cookie only tells a binary
// that it was started by the broker (run by hand, it prints a hint and
// exits); it is not a security measure.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion, // used only by hosts that do not negotiate
	MagicCookieKey:   "IRSA_BROKER_IDENTITY_PLUGIN",
	MagicCookieValue: "6c1d0b7a-irsa-broker-identity-provider",
}

// VersionedPlugins is the plugin set per protocol version. Plugins pass their
// provider; the host passes nil and dispenses PluginName to get a Provider
// whose calls go over gRPC.
func VersionedPlugins(impl Provider) map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{
		1: {PluginName: &grpcPlugin{impl: impl}},
	}
}

// NewLogger is the logger plugins should use: hclog JSON on stderr (stdout
// carries the go-plugin handshake), at the host's level. The host re-logs
// these lines under its own logger.
func NewLogger(name string) hclog.Logger {
	level := hclog.LevelFromString(os.Getenv(LogLevelEnv))
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	return hclog.New(&hclog.LoggerOptions{Name: name, Output: os.Stderr, JSONFormat: true, Level: level})
}

// ServeOptions tune ServeWith.
type ServeOptions struct {
	// Logger for go-plugin's own messages (default NewLogger("plugin")).
	Logger hclog.Logger
	// ParentCheck is how often the plugin checks that the broker that started
	// it is still alive, and exits when it is gone (default 1s; <0 disables).
	ParentCheck time.Duration
}

// Serve runs p as a plugin and returns when the host stops it. Call it from
// the plugin's main:
//
//	func main() { sdk.Serve(myprovider.New()) }
func Serve(p Provider) { ServeWith(p, ServeOptions{}) }

// ServeWith is Serve with options.
func ServeWith(p Provider, o ServeOptions) {
	if o.Logger == nil {
		o.Logger = NewLogger("plugin")
	}
	if o.ParentCheck == 0 {
		o.ParentCheck = time.Second
	}
	if o.ParentCheck > 0 && os.Getenv(Handshake.MagicCookieKey) == Handshake.MagicCookieValue {
		go exitWithParent(os.Getppid(), o.ParentCheck, o.Logger)
	}
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: VersionedPlugins(p),
		GRPCServer:       plugin.DefaultGRPCServer,
		Logger:           o.Logger,
	})
}

// exitWithParent ends the plugin when its parent goes away, so that no plugin
// outlives a broker that was killed without a chance to clean up (the host
// also asks Linux for a parent-death signal; this covers the rest).
func exitWithParent(ppid int, every time.Duration, log hclog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for range t.C {
		if os.Getppid() != ppid {
			log.Warn("the broker that started this plugin is gone; exiting")
			os.Exit(0)
		}
	}
}
