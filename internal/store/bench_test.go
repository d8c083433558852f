package store

import (
	"fmt"
	"testing"
)

// BenchmarkAppend measures appending events in one transaction per batch,
// with either synchronous setting. It reports events/s; on a small machine
// the fsync per commit dominates batch=1 under synchronous=FULL.
func BenchmarkAppend(b *testing.B) {
	for _, relaxed := range []bool{false, true} {
		sync := "FULL"
		if relaxed {
			sync = "NORMAL"
		}
		for _, batch := range []int{1, 100} {
			b.Run(fmt.Sprintf("sync=%s/batch=%d", sync, batch), func(b *testing.B) {
				s := openTest(b, Options{RelaxedSync: relaxed})
				ctx := testCtx(b)
				addTrigger(b, s, "trigger://bench")
				b.ReportAllocs()
				b.ResetTimer()
				n := 0
				for n < b.N {
					size := min(batch, b.N-n)
					if _, err := s.Append(ctx, "trigger://bench", newEvents("k", n, size)); err != nil {
						b.Fatal(err)
					}
					n += size
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			})
		}
	}
}

// BenchmarkReadAndAdvance measures handing out stored events to a cursor,
// limit events a call. It reports events/s.
func BenchmarkReadAndAdvance(b *testing.B) {
	for _, limit := range []int{1, 100} {
		b.Run(fmt.Sprintf("limit=%d", limit), func(b *testing.B) {
			s := openTest(b, Options{RelaxedSync: true, MaxEventsPerTrigger: -1})
			ctx := testCtx(b)
			addTrigger(b, s, "trigger://bench")
			for n := 0; n < b.N; n += 1000 {
				if _, err := s.Append(ctx, "trigger://bench", newEvents("k", n, min(1000, b.N-n))); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			got := 0
			for got < b.N {
				evs, err := s.ReadAndAdvance(ctx, "bench", "trigger://bench", limit)
				if err != nil {
					b.Fatal(err)
				}
				if len(evs) == 0 {
					b.Fatalf("ran dry after %d of %d events", got, b.N)
				}
				got += len(evs)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
