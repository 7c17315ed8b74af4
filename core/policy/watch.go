package policy

import (
	"context"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watch reloads the policies whenever PolicyDir changes, until ctx is done
// (then it returns nil). It reacts to fsnotify events (debounced) and also
// polls every PollInterval, which covers file systems without events and a
// directory that was replaced. Unchanged sources are not recompiled; a policy
// that does not compile is refused (see Status) and the last good keeps
// serving. Without PolicyDir it just waits for ctx.
func (e *Engine) Watch(ctx context.Context) error {
	if e.opts.PolicyDir == "" {
		<-ctx.Done()
		return nil
	}
	var events <-chan fsnotify.Event
	var errs <-chan error
	if !e.noNotify {
		w, err := fsnotify.NewWatcher()
		if err == nil {
			err = w.Add(e.opts.PolicyDir)
		}
		if err != nil {
			e.log.Warn("cannot watch policy dir, polling only", "dir", e.opts.PolicyDir, "interval", e.opts.PollInterval, "error", err)
		} else {
			defer w.Close()
			events, errs = w.Events, w.Errors
		}
	}
	poll := time.NewTicker(e.opts.PollInterval)
	defer poll.Stop()
	var debounce <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			e.log.Trace("policy dir event", "event", ev.String())
			debounce = time.After(e.debounce)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			e.log.Warn("policy dir watch error", "error", err)
		case <-debounce:
			debounce = nil
			_ = e.reload(ctx, false) // failures are logged, counted and reported by Ready
		case <-poll.C:
			_ = e.reload(ctx, false)
		}
	}
}
