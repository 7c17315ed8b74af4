package static

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// debounce gathers the burst of events one save produces into one reload.
const debounce = 50 * time.Millisecond

// Watch reloads the users file given to Load whenever it changes, until ctx
// ends. It watches the directory, so editors that replace the file and
// Kubernetes ConfigMap volumes (which swap a ..data symlink) are followed. A
// broken file is logged and the previous users stay.
func (p *Provider) Watch(ctx context.Context) error {
	path := p.Path()
	w, err := watcher(path)
	if err != nil {
		return err
	}
	p.loop(ctx, w, path)
	return nil
}

func watcher(path string) (*fsnotify.Watcher, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: static: nothing to watch: users are inline", sdk.ErrInvalidConfig)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("static: watch %s: %w", path, err)
	}
	if err := w.Add(filepath.Dir(path)); err != nil {
		w.Close()
		return nil, fmt.Errorf("static: watch %s: %w", path, err)
	}
	return w, nil
}

func (p *Provider) loop(ctx context.Context, w *fsnotify.Watcher, path string) {
	defer w.Close()
	base := filepath.Base(path)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if name := filepath.Base(ev.Name); name == base || name == "..data" {
				timer.Reset(debounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			p.log.Warn("watching the users file", "path", path, "error", err)
		case <-timer.C:
			if err := p.Reload(); err != nil {
				p.log.Error("users file not reloaded; the previous users stay", "path", path, "error", err)
				continue
			}
			p.log.Info("users file reloaded", "path", path, "users", p.count())
		}
	}
}

func (p *Provider) count() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.users)
}

func (p *Provider) startWatching(path string) error {
	w, err := watcher(path)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	p.watchMu.Lock()
	p.stopWatch, p.watchDone = cancel, done
	p.watchMu.Unlock()
	go func() {
		defer close(done)
		p.loop(ctx, w, path)
	}()
	return nil
}

func (p *Provider) stopWatching() {
	p.watchMu.Lock()
	cancel, done := p.stopWatch, p.watchDone
	p.stopWatch, p.watchDone = nil, nil
	p.watchMu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// Close stops watching the users file.
func (p *Provider) Close() error {
	p.stopWatching()
	return nil
}
