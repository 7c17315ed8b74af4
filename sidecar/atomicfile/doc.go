// Package atomicfile replaces a file so that readers see either the old or the
// new content, never a partial write.
package atomicfile
