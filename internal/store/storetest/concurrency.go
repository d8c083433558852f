package storetest

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/store"
)

// replicas is how many instances the concurrency tests spread over when the
// store has replicas.
const replicas = 3

// readAndAdvanceExactlyOnce runs 8 consumers with distinct names and 8
// goroutines sharing one name (spread over the replicas) against a trigger
// that is being appended to. Each distinct consumer must see every event
// once, in order; the shared-name goroutines must split the events between
// them with nothing lost and nothing handed out twice.
func (c *suite) readAndAdvanceExactlyOnce(t *testing.T) {
	opts := store.Options{RelaxedSync: true}
	s := c.open(t, opts)
	ctx := testCtx(t)
	const uri = "trigger://shared"
	addTrigger(t, s, uri)
	stores := c.instances(t, s, opts, replicas)

	const total = 600
	var (
		appended []int64
		writer   = NewProgress()
		wg       sync.WaitGroup
	)
	// Half the events exist before the readers start, half arrive meanwhile.
	evs, err := s.Append(ctx, uri, newEvents("k", 0, total/2))
	require.NoError(t, err)
	appended = append(appended, seqsOf(evs)...)

	consume := func(st StoreAPI, name string, limit int, got *[]int64) {
		defer wg.Done()
		for {
			done, next := writer.State()
			evs, err := st.ReadAndAdvance(ctx, name, uri, limit)
			if !assert.NoError(t, err) {
				return
			}
			*got = append(*got, seqsOf(evs)...)
			if len(evs) == 0 {
				if done {
					return
				}
				// Caught up: wait for the writer's next commit.
				if !assert.True(t, Wait(ctx, next), "waiting for the writer: %v", ctx.Err()) {
					return
				}
			}
		}
	}

	distinct := make([][]int64, 8)
	shared := make([][]int64, 8)
	for i := range 8 {
		wg.Add(2)
		go consume(stores[i%len(stores)], fmt.Sprintf("consumer-%d", i), 13+i, &distinct[i])
		go consume(stores[(i+1)%len(stores)], "everyone", 7+i, &shared[i])
	}

	wg.Add(1)
	go func() {
		defer wg.Done()
		defer writer.Finish()
		for i := total / 2; i < total; i += 10 {
			// Each batch repeats the previous batch's keys: duplicates
			// must not reach any consumer.
			batch := append(newEvents("k", i-10, 10), newEvents("k", i, 10)...)
			evs, err := s.Append(ctx, uri, batch)
			if !assert.NoError(t, err) {
				return
			}
			appended = append(appended, seqsOf(evs)...)
			writer.Committed()
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
	cur, err := s.Cursor(ctx, "everyone", uri)
	require.NoError(t, err)
	assert.Equal(t, appended[len(appended)-1], cur)
}

// concurrentReadersWhileWriting pages through a trigger with several readers
// (spread over the replicas) while a writer appends to it (three rounds of
// batches of 1 to 25 events, interleaved with another trigger's events);
// every reader must end with exactly the appended events, in order, never
// seeing a gap filled later. A reader that has caught up waits for the
// writer's next commit.
func (c *suite) concurrentReadersWhileWriting(t *testing.T) {
	opts := store.Options{RelaxedSync: true}
	s := c.open(t, opts)
	ctx := testCtx(t)
	const uri = "trigger://busy"
	addTrigger(t, s, uri)
	addTrigger(t, s, "trigger://other")
	stores := c.instances(t, s, opts, replicas)

	const total = 3 * 25 * 26 / 2 // three rounds of batch sizes 1..25
	var (
		appended []store.Event
		writer   = NewProgress()
		wg       sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer writer.Finish()
		n := 0
		for batch := 1; n < total; batch = batch%25 + 1 {
			size := min(batch, total-n)
			evs, err := s.AppendWithState(ctx, uri, newEvents("k", n, size), fmt.Appendf(nil, `{"hwm":%d}`, n+size))
			if !assert.NoError(t, err) {
				return
			}
			appended = append(appended, evs...)
			n += size
			// Interleave another trigger's events.
			if _, err := s.Append(ctx, "trigger://other", newEvents("o", n, 1)); !assert.NoError(t, err) {
				return
			}
			writer.Committed()
		}
	}()

	const readers = 4
	results := make([][]store.Event, readers)
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := stores[r%len(stores)]
			var after int64
			for {
				finished, next := writer.State()
				latest, err := st.LatestSeq(ctx, uri)
				if !assert.NoError(t, err) {
					return
				}
				page, err := st.EventsAfter(ctx, uri, after, 10+r*10)
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
				tr, ok, err := st.Trigger(ctx, uri)
				if !assert.NoError(t, err) || !assert.True(t, ok) {
					return
				}
				assert.NotEmpty(t, tr.Kind)
				if len(page) == 0 {
					if finished {
						return
					}
					if !assert.True(t, Wait(ctx, next), "waiting for the writer: %v", ctx.Err()) {
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

// concurrentAppendersWhileReading appends to one trigger from 8 goroutines
// (spread over the replicas) with overlapping keys, while readers page with
// EventsAfter: each key is stored once, every acknowledged event is stored,
// and each reader sees every stored event exactly once, in sequence order,
// although appends commit concurrently.
func (c *suite) concurrentAppendersWhileReading(t *testing.T) {
	opts := store.Options{RelaxedSync: true}
	s := c.open(t, opts)
	ctx := testCtx(t)
	const uri = "trigger://many"
	addTrigger(t, s, uri)
	stores := c.instances(t, s, opts, replicas)

	const (
		writers = 8
		rounds  = 40
		batch   = 3
	)
	var (
		mu       sync.Mutex
		acked    = map[int64]string{}
		keys     = map[string]int64{}
		progress = NewProgress()
		wwg, rwg sync.WaitGroup
	)
	for w := range writers {
		wwg.Add(1)
		go func() {
			defer wwg.Done()
			st := stores[w%len(stores)]
			for i := range rounds {
				// Writers w and w+4 use the same keys: each key is stored
				// once, by whichever comes first.
				evs, err := st.Append(ctx, uri, newEvents("k", (w%4)*1000+i*batch, batch))
				if !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				for _, e := range evs {
					_, dupSeq := acked[e.Seq]
					assert.False(t, dupSeq, "sequence %d handed out twice", e.Seq)
					_, dupKey := keys[e.Key]
					assert.False(t, dupKey, "key %s stored twice", e.Key)
					acked[e.Seq], keys[e.Key] = e.Key, e.Seq
				}
				mu.Unlock()
				progress.Committed()
			}
		}()
	}

	const readers = 3
	results := make([][]store.Event, readers)
	for r := range readers {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			st := stores[(r+1)%len(stores)]
			var after int64
			for {
				finished, next := progress.State()
				page, err := st.EventsAfter(ctx, uri, after, 5+r*4)
				if !assert.NoError(t, err) {
					return
				}
				if len(page) > 0 {
					after = page[len(page)-1].Seq
					results[r] = append(results[r], page...)
					continue
				}
				if finished {
					return
				}
				if !assert.True(t, Wait(ctx, next), "waiting for the writers: %v", ctx.Err()) {
					return
				}
			}
		}()
	}
	wwg.Wait()
	progress.Finish()
	rwg.Wait()

	stored := allEvents(t, s, uri)
	require.Len(t, stored, 4*rounds*batch)
	require.Len(t, acked, len(stored), "every stored event was acknowledged to one writer")
	for _, e := range stored {
		assert.Equal(t, acked[e.Seq], e.Key)
	}
	assert.True(t, slices.IsSortedFunc(stored, func(a, b store.Event) int { return cmp.Compare(a.Seq, b.Seq) }))
	for r, got := range results {
		assert.Equal(t, stored, got, "reader %d saw every event exactly once, in order", r)
	}
	latest, err := s.LatestSeq(ctx, uri)
	require.NoError(t, err)
	assert.Equal(t, stored[len(stored)-1].Seq, latest)
}
