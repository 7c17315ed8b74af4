// Package syncbuf is a text buffer that one goroutine may write (a logger,
// a process's output) while another reads it: what tests use to wait for a
// log line.
package syncbuf

import (
	"strings"
	"sync"
)

// Buffer is a strings.Builder safe for concurrent Write and reads.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

// Write implements io.Writer.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Contains reports whether sub was written.
func (s *Buffer) Contains(sub string) bool { return strings.Contains(s.String(), sub) }

// Count counts the non-overlapping instances of sub written.
func (s *Buffer) Count(sub string) int { return strings.Count(s.String(), sub) }
