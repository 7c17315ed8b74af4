package policy

import (
	"context"

	"github.com/irsa-broker/irsa-broker/internal/filewatch"
)

// Watch reloads the policies whenever the content of PolicyDir changes,
// until ctx is done (then it returns nil). It reacts to fsnotify events
// (debounced) and also checks every PollInterval, which covers file systems
// without events and a directory that was replaced (internal/filewatch).
// Unchanged sources are not recompiled; a policy that does not compile is
// refused (see Status) and the last good keeps serving. Without PolicyDir it
// just waits for ctx.
func (e *Engine) Watch(ctx context.Context) error {
	if e.opts.PolicyDir == "" {
		<-ctx.Done()
		return nil
	}
	w, err := filewatch.New([]string{e.opts.PolicyDir}, filewatch.Options{
		Debounce: e.debounce, Poll: e.opts.PollInterval, NoNotify: e.noNotify, Logger: e.log,
	})
	if err != nil {
		return err
	}
	// An edit between New's load and this watch: a no-op when unchanged.
	_ = e.reload(ctx, false)
	w.Run(ctx, func() {
		_ = e.reload(ctx, false) // failures are logged, counted and reported by Status
	})
	return nil
}
