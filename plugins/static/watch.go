package static

import (
	"context"
	"fmt"
	"time"

	"github.com/irsa-broker/irsa-broker/internal/filewatch"
	"github.com/irsa-broker/irsa-broker/plugins/sdk"
)

// debounce gathers the burst of events one save produces into one reload.
const debounce = 50 * time.Millisecond

// Watch reloads the users file given to Load whenever its content changes,
// until ctx ends. The directory is watched, so editors that replace the file
// and Kubernetes ConfigMap volumes (which swap a ..data symlink) are
// followed, and the file is re-checked periodically besides. A broken file
// is logged and the previous users stay.
func (p *Provider) Watch(ctx context.Context) error {
	w, err := p.watcher(p.Path())
	if err != nil {
		return err
	}
	w.Run(ctx, p.reload)
	return nil
}

func (p *Provider) watcher(path string) (*filewatch.Watcher, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: static: nothing to watch: users are inline", sdk.ErrInvalidConfig)
	}
	w, err := filewatch.New([]string{path}, filewatch.Options{Debounce: debounce, Logger: p.log})
	if err != nil {
		return nil, fmt.Errorf("static: watch %s: %w", path, err)
	}
	return w, nil
}

// reload is Reload for the watcher: it logs instead of returning.
func (p *Provider) reload() {
	path := p.Path()
	if err := p.Reload(); err != nil {
		p.log.Error("users file not reloaded; the previous users stay", "path", path, "error", err)
		return
	}
	p.log.Info("users file reloaded", "path", path, "users", p.count())
}

func (p *Provider) count() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return len(p.users)
}

// startWatching runs w until stopWatching.
func (p *Provider) startWatching(w *filewatch.Watcher) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	p.watchMu.Lock()
	p.stopWatch, p.watchDone = cancel, done
	p.watchMu.Unlock()
	go func() {
		defer close(done)
		w.Run(ctx, p.reload)
	}()
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

// watching reports whether a watch runs.
func (p *Provider) watching() bool {
	p.watchMu.Lock()
	defer p.watchMu.Unlock()
	return p.stopWatch != nil
}

// Close stops watching the users file.
func (p *Provider) Close() error {
	p.stopWatching()
	return nil
}
