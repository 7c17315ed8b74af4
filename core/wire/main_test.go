package wire_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/irsa-broker/irsa-broker/plugins/builtin"
	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// The test binary doubles as the broker binary: the plugin host starts
// built-in providers as `<test binary> plugin NAME`, as serve starts
// `irsa-broker plugin NAME`, so these tests run real plugin processes.
func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == "plugin" && os.Getenv(sdk.Handshake.MagicCookieKey) != "" {
		if err := builtin.Serve(os.Args[2]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	// Plugin children built with -race would otherwise sleep 1s at exit.
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	os.Exit(m.Run())
}
