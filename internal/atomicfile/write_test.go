package atomicfile

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestWriteIfChanged(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub", "dir", "config")

	changed, err := WriteIfChanged(ctx, path, []byte("one"), 0o644)
	if err != nil || !changed {
		t.Fatalf("first write: changed=%v err=%v", changed, err)
	}
	fi1, _ := os.Stat(path)

	changed, err = WriteIfChanged(ctx, path, []byte("one"), 0o644)
	if err != nil || changed {
		t.Fatalf("same content: changed=%v err=%v, want no write", changed, err)
	}
	fi2, _ := os.Stat(path)
	if !os.SameFile(fi1, fi2) {
		t.Error("unchanged content replaced the file")
	}

	changed, err = WriteIfChanged(ctx, path, []byte("two"), 0o644)
	if err != nil || !changed {
		t.Fatalf("new content: changed=%v err=%v", changed, err)
	}
	if b, _ := os.ReadFile(path); string(b) != "two" {
		t.Fatalf("content = %q", b)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o644 {
		t.Errorf("mode = %v, want 0644", fi.Mode().Perm())
	}

	// Empty content (a user with no grants) is a real write, distinct from "missing".
	changed, err = WriteIfChanged(ctx, path, nil, 0o644)
	if err != nil || !changed {
		t.Fatalf("empty: changed=%v err=%v", changed, err)
	}
	if fi, _ := os.Stat(path); fi.Size() != 0 {
		t.Errorf("size = %d", fi.Size())
	}

	// No temporary files left behind.
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the config", len(entries))
	}
}

func TestWriteErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// Parent is a regular file: cannot create the directory.
	blocker := filepath.Join(dir, "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(ctx, filepath.Join(blocker, "config"), []byte("x"), 0o644); err == nil {
		t.Error("write under a regular file succeeded")
	}
	// Target is a directory: rename fails, temp file removed.
	target := filepath.Join(dir, "isdir")
	if err := os.MkdirAll(filepath.Join(target, "child"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteIfChanged(ctx, target, []byte("x"), 0o644); err == nil {
		t.Error("write over a non-empty directory succeeded")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := Write(cctx, filepath.Join(dir, "c"), []byte("x"), 0o644); err == nil {
		t.Error("write with a canceled context succeeded")
	}
}

// TestCheckBeforeRename: a check sees the complete temporary file; its error
// leaves the target as it was and no temporary file behind.
func TestCheckBeforeRename(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "config")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	refused := errors.New("refused")
	var seen string
	check := func(_ context.Context, tmp string) error {
		b, err := os.ReadFile(tmp)
		seen = string(b)
		if err != nil {
			return err
		}
		return refused
	}
	if changed, err := WriteIfChanged(ctx, path, []byte("new"), 0o644, check); changed || !errors.Is(err, refused) {
		t.Fatalf("changed=%v err=%v", changed, err)
	}
	if seen != "new" {
		t.Errorf("check saw %q", seen)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Errorf("target = %q after a refused check", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the config", len(entries))
	}
	pass := func(context.Context, string) error { return nil }
	if changed, err := WriteIfChanged(ctx, path, []byte("new"), 0o644, pass); !changed || err != nil {
		t.Fatalf("changed=%v err=%v", changed, err)
	}
	if b, _ := os.ReadFile(path); string(b) != "new" {
		t.Errorf("target = %q", b)
	}
}

// TestConcurrentReader replaces a file many times while readers read it in a
// loop: every read must be one complete version, never empty or mixed.
func TestConcurrentReader(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "config")
	versions := make([][]byte, 8)
	for i := range versions {
		// Large enough that a non-atomic write would be observed half-done.
		versions[i] = bytes.Repeat([]byte{byte('a' + i)}, 64<<10)
	}
	if err := Write(ctx, path, versions[0], 0o644); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var reads atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan string, 4)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				b, err := os.ReadFile(path)
				if err != nil {
					errc <- "read: " + err.Error()
					return
				}
				reads.Add(1)
				if len(b) != 64<<10 || bytes.Count(b, b[:1]) != len(b) {
					errc <- "reader saw a partial or mixed file"
					return
				}
			}
		}()
	}
	deadline := time.Now().Add(time.Second)
	for i := 1; time.Now().Before(deadline) && (i < 100 || reads.Load() < 50); i++ {
		if err := Write(ctx, path, versions[i%len(versions)], 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errc)
	for e := range errc {
		t.Fatal(e)
	}
	if reads.Load() == 0 {
		t.Fatal("readers never ran")
	}
}
