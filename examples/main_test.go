package examples_test

import (
	"testing"

	"github.com/irsa-broker/irsa-broker/plugins/builtin/builtintest"
)

// The test binary doubles as the broker binary, which starts the built-in
// Domino provider as `<binary> plugin domino`.
func TestMain(m *testing.M) { builtintest.Main(m) }
