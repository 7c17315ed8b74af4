package main

import (
	"context"
	"flag"
	"io"

	"github.com/irsa-broker/irsa-broker/core/config"
	"github.com/irsa-broker/irsa-broker/core/wire"
)

func runServe(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = usageOf(fs, stderr)
	var cfg config.Serve
	cfg.Register(fs)
	if err := config.Parse(fs, args, nil); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	return wire.Serve(ctx, cfg, newLogger(stderr, cfg.LogLevel, cfg.LogFormat))
}
