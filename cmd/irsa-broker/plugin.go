package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/irsa-broker/irsa-broker/plugins/builtin"
)

// runPlugin serves a built-in identity provider as a go-plugin: the broker
// starts itself this way (`irsa-broker plugin NAME`) so that built-in and
// third-party providers cross the same protocol. Run by hand it only prints
// go-plugin's hint that it is meant to be started by the broker.
func runPlugin(ctx context.Context, args []string, stderr io.Writer) error {
	if len(args) != 1 {
		fmt.Fprintf(stderr, "usage: irsa-broker plugin NAME   (NAME: %s)\n", strings.Join(builtin.Names(), ", "))
		return errors.New("plugin: exactly one provider name expected")
	}
	if _, err := builtin.New(args[0], nil); err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- builtin.Serve(args[0]) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done(): // SIGTERM: main's signal context swallowed it, so end here
		return nil
	}
}
