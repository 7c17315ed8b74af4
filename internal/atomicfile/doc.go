// Package atomicfile replaces a file so that readers see either the old or the
// new content, never a partial write. It is shared by the broker (the file
// mapping store) and the sidecar (the AWS config file).
package atomicfile
