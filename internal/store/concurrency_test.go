package store

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConcurrentAppendersThenReopen appends from many goroutines at once; every
// acknowledged event is there after a reopen.
func TestConcurrentAppendersThenReopen(t *testing.T) {
	path := tempDBPath(t)
	s, err := Open(path, Options{RelaxedSync: true})
	require.NoError(t, err)
	ctx := testCtx(t)
	const uri = "trigger://many"
	addTrigger(t, s, uri)

	var (
		mu    sync.Mutex
		acked = map[int64]string{}
		wg    sync.WaitGroup
	)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				// Writers overlap on keys: each key is stored once.
				evs, err := s.Append(ctx, uri, newEvents("k", (w%4)*1000+i*3, 3))
				if !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				for _, e := range evs {
					_, dup := acked[e.Seq]
					assert.False(t, dup)
					acked[e.Seq] = e.Key
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	require.NoError(t, s.Close())

	s = openAt(t, path, Options{})
	stored := allEvents(t, s, uri)
	assert.Len(t, stored, 4*150)
	require.Len(t, acked, len(stored))
	for _, e := range stored {
		assert.Equal(t, acked[e.Seq], e.Key)
	}
}
