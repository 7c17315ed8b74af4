package atomicfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Check inspects the complete temporary file (already holding the new data and
// mode) before it replaces the target; an error leaves the target untouched
// and is returned as is.
type Check func(ctx context.Context, tmpPath string) error

// WriteIfChanged writes data to path unless the file already holds exactly data.
// It reports whether it wrote. The directory is created if needed. checks run
// only when it writes (see Write).
func WriteIfChanged(ctx context.Context, path string, data []byte, perm fs.FileMode, checks ...Check) (bool, error) {
	cur, err := os.ReadFile(path)
	switch {
	case err == nil && bytes.Equal(cur, data):
		// Same content; still make sure the mode is what readers need.
		if fi, serr := os.Stat(path); serr == nil && fi.Mode().Perm() != perm {
			if err := os.Chmod(path, perm); err != nil {
				return false, fmt.Errorf("chmod %s: %w", path, err)
			}
		}
		return false, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return false, fmt.Errorf("read %s: %w", path, err)
	}
	if err := Write(ctx, path, data, perm, checks...); err != nil {
		return false, err
	}
	return true, nil
}

// Write replaces path with data: it writes a temporary file in the same
// directory, syncs it, renames it over path and syncs the directory, so a
// concurrent reader sees the old file or the new one, and a crash leaves one of
// them on disk. Each check runs on the temporary file before the rename, so
// what it approved is exactly what readers get.
func Write(ctx context.Context, path string, data []byte, perm fs.FileMode, checks ...Check) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create directory %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary file in %s: %w", dir, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(perm); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}
	for _, check := range checks {
		if err := check(ctx, tmp.Name()); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename into %s: %w", path, err)
	}
	if d, derr := os.Open(dir); derr == nil {
		// Best effort: some filesystems do not support syncing directories.
		_ = d.Sync()
		d.Close()
	}
	return nil
}
