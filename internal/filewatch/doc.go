// Package filewatch calls a function when the content of files or
// directories changes. It watches each path's parent directory with fsnotify,
// so that atomic renames (editors, atomic writers) and the `..data` symlink
// swaps of Kubernetes ConfigMap and Secret volumes are seen, debounces bursts
// of events, and re-checks periodically for file systems that deliver no
// events. Only a real change of content calls back: every check compares a
// hash of the paths' content with the previous one.
package filewatch
