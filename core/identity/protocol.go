package identity

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// ProtocolError says that a plugin speaks no plugin protocol version this
// broker speaks. It wraps sdk.ErrInvalidConfig: retrying cannot help, the
// plugin must be rebuilt against an SDK release that speaks a version of
// Host (or the broker upgraded).
type ProtocolError struct {
	Provider string
	// Plugin is the version the plugin offered: the newest one it has in
	// common with the broker's list, else the oldest it speaks (go-plugin's
	// negotiation).
	Plugin int
	// Host are the versions this broker speaks (sdk.VersionedPlugins).
	Host []int
}

func (e *ProtocolError) Error() string {
	host := make([]string, len(e.Host))
	for i, v := range e.Host {
		host[i] = strconv.Itoa(v)
	}
	return fmt.Sprintf("identity plugin %s speaks plugin protocol version %d, this broker speaks version %s: "+
		"rebuild the plugin against a release of %s that speaks version %s, or run a broker that speaks %d (docs/plugins.md, Compatibility)",
		e.Provider, e.Plugin, strings.Join(host, ", "), sdkModule, strings.Join(host, " or "), e.Plugin)
}

func (e *ProtocolError) Unwrap() error { return sdk.ErrInvalidConfig }

// sdkModule is the SDK's module path, for messages to integrators.
const sdkModule = "github.com/irsa-broker/irsa-broker/plugins/sdk"

// hostVersions are the protocol versions this broker speaks, oldest first.
func hostVersions() []int { return slices.Sorted(maps.Keys(sdk.VersionedPlugins(nil))) }

// incompatible matches go-plugin's (v1.x) negotiation failure, which has no
// error type: "incompatible API version with plugin. Plugin version: 2,
// Client versions: [1]". TestProtocolMismatch pins it.
var incompatible = regexp.MustCompile(`(?i)incompatible API version with plugin\. Plugin version: (-?\d+)`)

// protocolError turns go-plugin's negotiation failure into a ProtocolError
// (nil for any other error).
func protocolError(provider string, err error) error {
	m := incompatible.FindStringSubmatch(err.Error())
	if m == nil {
		return nil
	}
	v, convErr := strconv.Atoi(m[1])
	if convErr != nil {
		return nil
	}
	return &ProtocolError{Provider: provider, Plugin: v, Host: hostVersions()}
}
