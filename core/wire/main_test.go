package wire_test

import (
	"testing"

	"github.com/irsa-broker/irsa-broker/plugins/builtin/builtintest"
)

// The test binary doubles as the broker binary: the plugin host starts
// built-in providers as `<test binary> plugin NAME`, as serve starts
// `irsa-broker plugin NAME`, so these tests run real plugin processes.
func TestMain(m *testing.M) { builtintest.Main(m) }
