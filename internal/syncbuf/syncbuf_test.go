package syncbuf

import (
	"fmt"
	"sync"
	"testing"
)

func TestConcurrentWritesAndReads(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fmt.Fprintf(&b, "line %d\n", i)
			_ = b.Contains("line")
		}()
	}
	wg.Wait()
	if b.Count("\n") != 20 || !b.Contains("line 19\n") {
		t.Fatalf("buffer:\n%s", b.String())
	}
}
