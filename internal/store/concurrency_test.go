package store

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReadAndAdvanceExactlyOnce runs 8 consumers with distinct names and 8
// goroutines sharing one name against a trigger that is being appended to.
// Each distinct consumer must see every event once, in order; the shared-name
// goroutines must split the events between them with nothing lost and
// nothing handed out twice.
func TestReadAndAdvanceExactlyOnce(t *testing.T) {
	s := openTest(t, Options{RelaxedSync: true})
	ctx := testCtx(t)
	const uri = "trigger://shared"
	addTrigger(t, s, uri)

	const total = 600
	var (
		appended []int64
		writer   = newProgress()
		wg       sync.WaitGroup
	)
	// Half the events exist before the readers start, half arrive meanwhile.
	evs, err := s.Append(ctx, uri, newEvents("k", 0, total/2))
	require.NoError(t, err)
	appended = append(appended, seqsOf(evs)...)

	consume := func(name string, limit int, got *[]int64) {
		defer wg.Done()
		for {
			done, next := writer.state()
			evs, err := s.ReadAndAdvance(ctx, name, uri, limit)
			if !assert.NoError(t, err) {
				return
			}
			*got = append(*got, seqsOf(evs)...)
			if len(evs) == 0 {
				if done {
					return
				}
				// Caught up: wait for the writer's next commit.
				if !assert.True(t, wait(ctx, next), "waiting for the writer: %v", ctx.Err()) {
					return
				}
			}
		}
	}

	distinct := make([][]int64, 8)
	shared := make([][]int64, 8)
	for i := range 8 {
		wg.Add(2)
		go consume(fmt.Sprintf("consumer-%d", i), 13+i, &distinct[i])
		go consume("everyone", 7+i, &shared[i])
	}

	wg.Add(1)
	go func() {
		defer wg.Done()
		defer writer.finish()
		for i := total / 2; i < total; i += 10 {
			// Each batch repeats the previous batch's keys: duplicates
			// must not reach any consumer.
			batch := append(newEvents("k", i-10, 10), newEvents("k", i, 10)...)
			evs, err := s.Append(ctx, uri, batch)
			if !assert.NoError(t, err) {
				return
			}
			appended = append(appended, seqsOf(evs)...)
			writer.committed()
		}
	}()
	wg.Wait()

	require.Len(t, appended, total)
	for i, got := range distinct {
		assert.Equal(t, appended, got, "consumer-%d sees every event once, in order", i)
	}
	var union []int64
	for _, got := range shared {
		assert.True(t, slices.IsSorted(got), "each shared reader sees ascending sequences")
		union = append(union, got...)
	}
	slices.Sort(union)
	assert.Equal(t, appended, union, "shared-name readers together see every event exactly once")
	busy := 0
	for _, got := range shared {
		if len(got) > 0 {
			busy++
		}
	}
	assert.Greater(t, busy, 1, "the work was actually shared")
}

// TestConcurrentReadersWhileWriting pages through a trigger with several
// readers while a writer appends to it (three rounds of batches of 1 to 25
// events, interleaved with another trigger's events); every reader must end
// with exactly the appended events, in order, never seeing a gap filled
// later. A reader that has caught up waits for the writer's next commit.
func TestConcurrentReadersWhileWriting(t *testing.T) {
	s := openTest(t, Options{RelaxedSync: true})
	ctx := testCtx(t)
	const uri = "trigger://busy"
	addTrigger(t, s, uri)
	addTrigger(t, s, "trigger://other")

	const total = 3 * 25 * 26 / 2 // three rounds of batch sizes 1..25
	var (
		appended []Event
		writer   = newProgress()
		wg       sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer writer.finish()
		n := 0
		for batch := 1; n < total; batch = batch%25 + 1 {
			size := min(batch, total-n)
			evs, err := s.AppendWithState(ctx, uri, newEvents("k", n, size), fmt.Appendf(nil, `{"hwm":%d}`, n+size))
			if !assert.NoError(t, err) {
				return
			}
			appended = append(appended, evs...)
			n += size
			// Interleave another trigger's events in the same sequence.
			if _, err := s.Append(ctx, "trigger://other", newEvents("o", n, 1)); !assert.NoError(t, err) {
				return
			}
			writer.committed()
		}
	}()

	const readers = 4
	results := make([][]Event, readers)
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var after int64
			for {
				finished, next := writer.state()
				latest, err := s.LatestSeq(ctx, uri)
				if !assert.NoError(t, err) {
					return
				}
				page, err := s.EventsAfter(ctx, uri, after, 10+r*10)
				if !assert.NoError(t, err) {
					return
				}
				if len(page) > 0 {
					after = page[len(page)-1].Seq
					results[r] = append(results[r], page...)
				}
				// LatestSeq read before the page never exceeds what the
				// page could reach.
				if len(page) == 0 && !assert.LessOrEqual(t, latest, after) {
					return
				}
				tr, ok, err := s.Trigger(ctx, uri)
				if !assert.NoError(t, err) || !assert.True(t, ok) {
					return
				}
				assert.NotEmpty(t, tr.Kind)
				if len(page) == 0 {
					if finished {
						return
					}
					// Caught up: wait for the writer's next commit.
					if !assert.True(t, wait(ctx, next), "waiting for the writer: %v", ctx.Err()) {
						return
					}
				}
			}
		}()
	}
	wg.Wait()

	require.Len(t, appended, total)
	for r, got := range results {
		assert.Equal(t, appended, got, "reader %d", r)
	}
	tr, _, err := s.Trigger(ctx, uri)
	require.NoError(t, err)
	assert.JSONEq(t, fmt.Sprintf(`{"hwm":%d}`, total), string(tr.State))
}

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
