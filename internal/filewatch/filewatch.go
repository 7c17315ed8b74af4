package filewatch

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/hashicorp/go-hclog"
)

// Defaults for Options fields left zero.
const (
	DefaultDebounce = 100 * time.Millisecond
	DefaultPoll     = 10 * time.Second
)

// Options tune a Watcher. Zero values take the defaults.
type Options struct {
	// Debounce is how long events must pause before the paths are checked,
	// so that one save (truncate, writes, rename) is one check.
	Debounce time.Duration
	// Poll is how often the paths are checked without any event.
	Poll time.Duration
	// NoNotify checks by polling only (file systems without inotify; tests).
	NoNotify bool
	// Logger receives watch errors (default: null).
	Logger hclog.Logger
}

// Watcher watches a fixed set of paths. A path is a file (its content
// counts, through symlinks) or a directory (the names of its entries and the
// content of the files among them, not recursively); a missing path is a
// state too, so creation and removal are changes.
type Watcher struct {
	paths []string
	opts  Options
	log   hclog.Logger
	last  [32]byte

	// afterCheck, if set, is called after every check (tests).
	afterCheck func(changed bool)
}

// New records the current state of paths; Run reports changes from it. Call
// New before loading the files, so that no change in between is missed.
func New(paths []string, opts Options) (*Watcher, error) {
	if len(paths) == 0 {
		return nil, errors.New("filewatch: no path to watch")
	}
	w := &Watcher{opts: opts}
	for _, p := range paths {
		if p == "" {
			return nil, errors.New("filewatch: empty path")
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("filewatch: %s: %w", p, err)
		}
		w.paths = append(w.paths, abs)
	}
	if w.opts.Debounce <= 0 {
		w.opts.Debounce = DefaultDebounce
	}
	if w.opts.Poll <= 0 {
		w.opts.Poll = DefaultPoll
	}
	w.log = w.opts.Logger
	if w.log == nil {
		w.log = hclog.NewNullLogger()
	}
	w.last = w.fingerprint()
	return w, nil
}

// Watch is New followed by Run.
func Watch(ctx context.Context, paths []string, opts Options, onChange func()) error {
	w, err := New(paths, opts)
	if err != nil {
		return err
	}
	w.Run(ctx, onChange)
	return nil
}

// Run calls onChange, from Run's goroutine, after each change of the paths'
// content (first for any change since New), until ctx ends. Without fsnotify
// (unsupported, out of watches) it logs a warning and polls.
func (w *Watcher) Run(ctx context.Context, onChange func()) {
	var (
		fw     *fsnotify.Watcher
		events <-chan fsnotify.Event
		errs   <-chan error
	)
	if !w.opts.NoNotify {
		var err error
		if fw, err = fsnotify.NewWatcher(); err != nil {
			w.log.Warn("cannot watch for file events; polling only", "paths", w.paths, "interval", w.opts.Poll, "error", err)
		} else {
			defer fw.Close()
			events, errs = fw.Events, fw.Errors
			if err := w.addWatches(fw); err != nil {
				w.log.Warn("cannot watch a directory yet; polling until it exists", "interval", w.opts.Poll, "error", err)
			}
		}
	}
	check := func() {
		if fw != nil {
			// Directories that appeared, or replaced a watched one; watched
			// before hashing, so a write after the hash is an event.
			_ = w.addWatches(fw)
		}
		fp := w.fingerprint()
		changed := fp != w.last
		if changed {
			w.last = fp
			onChange()
		}
		if w.afterCheck != nil {
			w.afterCheck(changed)
		}
	}
	check()
	poll := time.NewTicker(w.opts.Poll)
	defer poll.Stop()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if w.concerns(ev.Name) {
				debounce.Reset(w.opts.Debounce)
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			w.log.Warn("file watch error; the periodic check continues", "paths", w.paths, "error", err)
		case <-debounce.C:
			check()
		case <-poll.C:
			check()
		}
	}
}

// dirs are the directories to watch: every path's parent (renames, symlink
// swaps, creation and removal) and every path that is a directory.
func (w *Watcher) dirs() []string {
	var out []string
	for _, p := range w.paths {
		out = append(out, filepath.Dir(p))
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (w *Watcher) addWatches(fw *fsnotify.Watcher) error {
	var errs []error
	for _, d := range w.dirs() {
		if err := fw.Add(d); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

// concerns reports whether an event on name may change a path: the path
// itself, an entry of a watched directory, or a Kubernetes volume's
// internals (..data, ..<timestamp>) beside a path.
func (w *Watcher) concerns(name string) bool {
	dir, base := filepath.Dir(name), filepath.Base(name)
	for _, p := range w.paths {
		switch {
		case name == p, dir == p:
			return true
		case dir == filepath.Dir(p) && strings.HasPrefix(base, ".."):
			return true
		}
	}
	return false
}

// fingerprint hashes the state of every path.
func (w *Watcher) fingerprint() [32]byte {
	h := sha256.New()
	for _, p := range w.paths {
		fmt.Fprintf(h, "%s\x00", p)
		st, err := os.Stat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			h.Write([]byte("absent\x00"))
		case err != nil:
			fmt.Fprintf(h, "error %v\x00", err)
		case st.IsDir():
			h.Write([]byte("dir\x00"))
			entries, err := os.ReadDir(p)
			if err != nil {
				fmt.Fprintf(h, "error %v\x00", err)
			}
			for _, e := range entries { // sorted by name
				fmt.Fprintf(h, "%s\x00", e.Name())
				hashEntry(h, filepath.Join(p, e.Name()))
			}
		default:
			hashEntry(h, p)
		}
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// hashEntry writes what a file (through symlinks) holds; of a directory only
// that it is one.
func hashEntry(h io.Writer, path string) {
	st, err := os.Stat(path)
	switch {
	case err != nil:
		fmt.Fprintf(h, "error %v\x00", err)
		return
	case st.IsDir():
		h.Write([]byte("dir\x00"))
		return
	case !st.Mode().IsRegular():
		fmt.Fprintf(h, "%v\x00", st.Mode().Type())
		return
	}
	f, err := os.Open(path)
	if err != nil {
		fmt.Fprintf(h, "error %v\x00", err)
		return
	}
	defer f.Close()
	sum := sha256.New()
	if _, err := io.Copy(sum, f); err != nil {
		fmt.Fprintf(h, "error %v\x00", err)
		return
	}
	h.Write(sum.Sum(nil))
}
