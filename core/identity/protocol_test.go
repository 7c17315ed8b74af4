package identity

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/irsa-broker/irsa-broker/internal/polltest"
	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// TestProtocolMismatch: a plugin that speaks only a protocol version this
// broker does not (here one built with a future SDK, version 2) is refused
// at start with an error that names both versions and what to do, and no
// process is left behind.
func TestProtocolMismatch(t *testing.T) {
	_, err := Open(context.Background(), PluginOptions{Name: "future", Provider: "ci", Builtins: testBuiltins})
	var pe *ProtocolError
	if !errors.As(err, &pe) {
		t.Fatalf("Open = %v, want a *ProtocolError", err)
	}
	if pe.Provider != "ci" || pe.Plugin != 2 || !slices.Equal(pe.Host, []int{sdk.ProtocolVersion}) {
		t.Fatalf("ProtocolError = %+v", pe)
	}
	if !errors.Is(err, sdk.ErrInvalidConfig) {
		t.Fatalf("%v does not wrap sdk.ErrInvalidConfig", err)
	}
	msg := err.Error()
	for _, want := range []string{"identity plugin ci", "protocol version 2", "this broker speaks version 1", sdkModule} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	polltest.Until(t, "the refused plugin process to be gone", func() bool { return len(children(t)) == 0 })
}

// TestProtocolErrorOnlyForNegotiation: other start failures are not
// mistaken for a version mismatch.
func TestProtocolErrorOnlyForNegotiation(t *testing.T) {
	if err := protocolError("x", errors.New("plugin exited before we could connect")); err != nil {
		t.Fatalf("protocolError = %v", err)
	}
	err := protocolError("x", errors.New("incompatible API version with plugin. Plugin version: 7, Client versions: [1]"))
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.Plugin != 7 {
		t.Fatalf("protocolError = %v", err)
	}
}
