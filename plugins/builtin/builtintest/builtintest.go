// Package builtintest lets a test binary stand in for the broker binary.
// The plugin host starts a built-in identity provider as
// `<broker binary> plugin NAME`; in a test, the broker binary is the test
// binary, so its TestMain must serve the provider when started that way.
// Tests then run real plugin processes without a separate build.
package builtintest

import (
	"fmt"
	"os"
	"testing"

	"github.com/irsa-broker/irsa-broker/plugins/builtin"
	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// PluginName returns NAME when this process was started by a plugin host
// as `<binary> plugin NAME`.
func PluginName() (string, bool) {
	if len(os.Args) == 3 && os.Args[1] == "plugin" && os.Getenv(sdk.Handshake.MagicCookieKey) != "" {
		return os.Args[2], true
	}
	return "", false
}

// Main is a TestMain: it serves the built-in provider the host asked for
// and exits, or runs the tests.
func Main(m *testing.M) {
	if name, ok := PluginName(); ok {
		if err := builtin.Serve(name); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	// Plugin children built with -race would otherwise sleep 1s at exit.
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	os.Exit(m.Run())
}
