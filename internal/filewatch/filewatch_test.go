package filewatch

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// modes: events only (the poll would take an hour), and polling only.
var modes = []struct {
	name string
	opts Options
}{
	{"fsnotify", Options{Debounce: 10 * time.Millisecond, Poll: time.Hour}},
	{"poll", Options{NoNotify: true, Poll: 10 * time.Millisecond}},
}

// harness runs a Watcher and reports its callbacks and checks.
type harness struct {
	t       *testing.T
	calls   chan struct{}
	checks  chan bool // changed
	stopped chan struct{}
}

func start(t *testing.T, paths []string, opts Options) *harness {
	t.Helper()
	w, err := New(paths, opts)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, calls: make(chan struct{}, 100), checks: make(chan bool, 1000), stopped: make(chan struct{})}
	w.afterCheck = func(changed bool) { h.checks <- changed }
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer close(h.stopped)
		w.Run(ctx, func() { h.calls <- struct{}{} })
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.stopped:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	// Run's first check: watches are in place from here on.
	if changed := h.check(); changed {
		t.Fatal("a change before anything changed")
	}
	return h
}

// check waits for the next check and returns whether it saw a change.
func (h *harness) check() bool {
	h.t.Helper()
	select {
	case changed := <-h.checks:
		return changed
	case <-time.After(10 * time.Second):
		h.t.Fatal("no check within 10s")
		return false
	}
}

// called waits for a callback.
func (h *harness) called(what string) {
	h.t.Helper()
	select {
	case <-h.calls:
	case <-time.After(10 * time.Second):
		h.t.Fatalf("no callback for %s within 10s", what)
	}
}

// notCalled shows that a step changed nothing: after the step, it touches
// path (an event, but no change of content) and waits for checks that
// surely started after the step (in poll mode the first may predate it),
// then finds no callback.
func (h *harness) notCalled(what, path string, poll bool) {
	h.t.Helper()
	for len(h.checks) > 0 {
		<-h.checks
	}
	now := time.Now().Add(time.Hour)
	must(h.t, os.Chtimes(path, now, now))
	n := 1
	if poll {
		n = 2
	}
	for range n {
		if h.check() {
			h.t.Fatalf("%s was reported as a change", what)
		}
	}
	select {
	case <-h.calls:
		h.t.Fatalf("%s was reported as a change", what)
	default:
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// configMap lays out dir the way kubelet mounts a ConfigMap or Secret:
// dir/key -> ..data/key, ..data -> ..<version>/.
func configMap(t *testing.T, dir, version, key, content string) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Join(dir, version), 0o700))
	write(t, filepath.Join(dir, version, key), content)
	if _, err := os.Lstat(filepath.Join(dir, "..data")); err != nil {
		must(t, os.Symlink(version, filepath.Join(dir, "..data")))
		must(t, os.Symlink(filepath.Join("..data", key), filepath.Join(dir, key)))
		return
	}
	// kubelet's swap: a new ..data_tmp link renamed over ..data, then the
	// old version removed.
	old, err := os.Readlink(filepath.Join(dir, "..data"))
	must(t, err)
	must(t, os.Symlink(version, filepath.Join(dir, "..data_tmp")))
	must(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	must(t, os.RemoveAll(filepath.Join(dir, old)))
}

func TestWatch(t *testing.T) {
	type env struct {
		t    *testing.T
		dir  string // scratch directory
		path string // the watched path
	}
	cases := []struct {
		name   string
		setup  func(e env)
		isDir  bool
		change func(e env)
		// same: the change leaves the content as it was: no callback.
		same bool
	}{
		{name: "in-place write",
			setup:  func(e env) { write(e.t, e.path, "one") },
			change: func(e env) { write(e.t, e.path, "two") }},
		{name: "rename over",
			setup: func(e env) { write(e.t, e.path, "one") },
			change: func(e env) {
				write(e.t, filepath.Join(e.dir, ".f.tmp"), "two")
				must(e.t, os.Rename(filepath.Join(e.dir, ".f.tmp"), e.path))
			}},
		{name: "ConfigMap ..data swap",
			setup:  func(e env) { configMap(e.t, e.dir, "..2024_01", "f", "one") },
			change: func(e env) { configMap(e.t, e.dir, "..2024_02", "f", "two") }},
		{name: "created",
			setup:  func(e env) {},
			change: func(e env) { write(e.t, e.path, "one") }},
		{name: "removed",
			setup:  func(e env) { write(e.t, e.path, "one") },
			change: func(e env) { must(e.t, os.Remove(e.path)) }},
		{name: "same size, same instant",
			setup:  func(e env) { write(e.t, e.path, "aaaa") },
			change: func(e env) { write(e.t, e.path, "bbbb") }},
		{name: "replaced by the same content", same: true,
			setup: func(e env) { write(e.t, e.path, "one") },
			change: func(e env) {
				write(e.t, filepath.Join(e.dir, ".f.tmp"), "one")
				must(e.t, os.Rename(filepath.Join(e.dir, ".f.tmp"), e.path))
			}},
		{name: "touched", same: true,
			setup: func(e env) { write(e.t, e.path, "one") },
			change: func(e env) {
				now := time.Now().Add(time.Minute)
				must(e.t, os.Chtimes(e.path, now, now))
			}},
		{name: "sibling file", same: true,
			setup:  func(e env) { write(e.t, e.path, "one") },
			change: func(e env) { write(e.t, filepath.Join(e.dir, "other"), "x") }},
		{name: "directory: file added", isDir: true,
			setup:  func(e env) { must(e.t, os.Mkdir(e.path, 0o700)) },
			change: func(e env) { write(e.t, filepath.Join(e.path, "a.rego"), "x") }},
		{name: "directory: file edited", isDir: true,
			setup: func(e env) {
				must(e.t, os.Mkdir(e.path, 0o700))
				write(e.t, filepath.Join(e.path, "a.rego"), "x")
			},
			change: func(e env) { write(e.t, filepath.Join(e.path, "a.rego"), "y") }},
		{name: "directory: file removed", isDir: true,
			setup: func(e env) {
				must(e.t, os.Mkdir(e.path, 0o700))
				write(e.t, filepath.Join(e.path, "a.rego"), "x")
			},
			change: func(e env) { must(e.t, os.Remove(filepath.Join(e.path, "a.rego"))) }},
		{name: "directory: ConfigMap ..data swap", isDir: true,
			setup: func(e env) {
				must(e.t, os.Mkdir(e.path, 0o700))
				configMap(e.t, e.path, "..2024_01", "a.rego", "x")
			},
			change: func(e env) { configMap(e.t, e.path, "..2024_02", "a.rego", "y") }},
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					dir := t.TempDir()
					e := env{t: t, dir: dir, path: filepath.Join(dir, "f")}
					c.setup(e)
					h := start(t, []string{e.path}, mode.opts)
					c.change(e)
					if c.same {
						h.notCalled(c.name, e.path, mode.opts.NoNotify)
						return
					}
					h.called(c.name)
				})
			}
		})
	}
}

// A change made after New but before Run watches is reported by Run's first
// check.
func TestChangeBeforeRun(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	write(t, path, "one")
	w, err := New([]string{path}, Options{Poll: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	write(t, path, "two")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := make(chan struct{}, 1)
	go w.Run(ctx, func() { calls <- struct{}{} })
	select {
	case <-calls:
	case <-time.After(10 * time.Second):
		t.Fatal("the change before Run was not reported")
	}
}

// A watched directory that is replaced (moved away, created again) is
// watched again: later edits inside it are still seen by events.
func TestDirectoryReplaced(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policies")
	must(t, os.Mkdir(path, 0o700))
	write(t, filepath.Join(path, "a.rego"), "x")
	w, err := New([]string{path}, modes[0].opts)
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan string, 100)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx, func() {
		b, _ := os.ReadFile(filepath.Join(path, "a.rego"))
		seen <- string(b)
	})
	waitSeen := func(want string) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case got := <-seen:
				if got == want {
					return
				}
			case <-timeout:
				t.Fatalf("content %q never seen", want)
			}
		}
	}
	must(t, os.Rename(path, filepath.Join(dir, "old")))
	must(t, os.Mkdir(path, 0o700))
	write(t, filepath.Join(path, "a.rego"), "y")
	waitSeen("y")
	write(t, filepath.Join(path, "a.rego"), "z")
	waitSeen("z")
}

// Several paths: a change to any of them calls back (a certificate and its key).
func TestSeveralPaths(t *testing.T) {
	dir := t.TempDir()
	crt, key := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	write(t, crt, "c1")
	write(t, key, "k1")
	h := start(t, []string{crt, key}, modes[0].opts)
	write(t, key, "k2")
	h.called("the key")
	write(t, crt, "c2")
	h.called("the certificate")
}

func TestNewRejectsNoPath(t *testing.T) {
	if _, err := New(nil, Options{}); err == nil {
		t.Fatal("no path accepted")
	}
	if _, err := New([]string{""}, Options{}); err == nil {
		t.Fatal("empty path accepted")
	}
	if err := Watch(context.Background(), nil, Options{}, func() {}); err == nil {
		t.Fatal("Watch without path accepted")
	}
}
