// Package heappeak measures the most heap a piece of work holds, for tests
// that bound memory.
package heappeak

import (
	"runtime"
	"sync"
	"time"
)

// Limit is the heap the project's tests allow a hostile input to take.
const Limit = 256 << 20

// During runs f after a collection and returns the highest heap in use
// (runtime.MemStats.HeapInuse: live objects and garbage not yet collected)
// sampled every few milliseconds while it ran.
func During(f func()) uint64 {
	runtime.GC()
	var peak uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	f()
	close(done)
	wg.Wait()
	return peak
}
