package pipedrive_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
	"github.com/cosell-mcp/cosell-mcp/internal/upstream"
)

// streamHuge writes a JSON reply of size bytes generated on the fly (never
// held in memory), counting what it could write before the client hung up.
func streamHuge(size int64, prefix string, written *atomic.Int64) http.HandlerFunc {
	row := []byte(`{"id":1,"title":"a deal of a very large reply","status":"open"},`)
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		n, err := io.WriteString(w, prefix)
		written.Add(int64(n))
		buf := []byte(strings.Repeat(string(row), (64<<10)/len(row)))
		for sent := int64(n); sent < size && err == nil; {
			n, err = w.Write(buf)
			sent += int64(n)
			written.Add(int64(n))
		}
	}
}

// issue finding 5: Pipedrive replies are read without a size limit (a 400 MB
// reply cost 1.7 GB) — now a success reply stops at the limit, with a clear
// error, at a memory cost bounded by the limit.
func TestHugeReplyIsRefusedWithBoundedMemory(t *testing.T) {
	var written atomic.Int64
	ts := httptest.NewServer(streamHuge(400<<20, `{"success":true,"data":[`, &written))
	t.Cleanup(ts.Close)
	c := pipedrive.New("t", pipedrive.WithBaseURL(ts.URL))

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	peak := samplePeak(t)
	_, _, err := c.ListDeals(t.Context(), pipedrive.ListDealsParams{})
	maxHeap := peak()
	runtime.ReadMemStats(&after)

	var be *upstream.BodyError
	require.ErrorAs(t, err, &be)
	assert.Equal(t, upstream.BodyTooLarge, be.Kind)
	assert.Contains(t, err.Error(), "larger than the 16 MiB limit")
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("400 MiB reply: server wrote %.0f MiB before the client hung up; client allocated %.1f MiB in all, peak heap in use %.1f MiB",
		float64(written.Load())/(1<<20), float64(alloc)/(1<<20), float64(maxHeap)/(1<<20))
	assert.Less(t, alloc, uint64(128<<20), "bounded by the limit, not the reply")

	// A smaller limit holds too.
	small := pipedrive.New("t", pipedrive.WithBaseURL(ts.URL), pipedrive.WithMaxBody(1<<20))
	_, _, err = small.ListDeals(t.Context(), pipedrive.ListDealsParams{})
	require.ErrorAs(t, err, &be)
	assert.Equal(t, int64(1<<20), be.Limit)
}

// samplePeak samples the heap in use until the returned function is called,
// which reports the highest value seen.
func samplePeak(t *testing.T) func() uint64 {
	stop := make(chan struct{})
	done := make(chan uint64)
	go func() {
		var peak uint64
		var ms runtime.MemStats
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				done <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(stop)
		return <-done
	}
}

// issue finding 7: secrets echoed — Pipedrive's error text carries no
// form of the API token.
func TestErrorsCarryNoToken(t *testing.T) {
	const token = `pd/tok+en"0123=`
	forms := []string{token, url.QueryEscape(token), url.PathEscape(token), `pd\/tok+en\"0123=`, `pd\u002ftok\u002ben\u00220123\u003d`}
	for _, f := range forms {
		body := fmt.Sprintf(`{"success":false,"error":"bad token %s","error_info":"%s"}`, strings.ReplaceAll(f, `"`, `\"`), f)
		c := scripted(t, 401, body)
		c = pipedrive.New(token, pipedrive.WithBaseURL(c.BaseURL()))
		_, err := c.GetDeal(t.Context(), 1)
		require.Error(t, err)
		for _, g := range forms {
			assert.NotContains(t, err.Error(), g)
		}
		var ue *upstream.Error
		require.ErrorAs(t, err, &ue)
		assert.Equal(t, 401, ue.Status)
	}
}

// issue finding 6: hostile Retry-After — the wait a 429 reports never
// overflows, whichever header carries it.
func TestHostileRateLimitHeaders(t *testing.T) {
	for _, h := range [][]string{
		{"Retry-After", "31536000"},
		{"Retry-After", "Fri, 31 Dec 9999 23:59:59 GMT"},
		{"x-ratelimit-reset", "99999999999999999999999"},
	} {
		c := scripted(t, 429, `{"success":false,"error":"slow down"}`, h...)
		_, err := c.GetDeal(t.Context(), 1)
		var ue *upstream.Error
		require.ErrorAs(t, err, &ue)
		assert.Equal(t, upstream.MaxRetryAfter, ue.RetryAfter, "%v", h)
	}
	_, resp, err := scripted(t, 200, `{"success":true,"data":[]}`, "x-ratelimit-reset", "99999999999999999999999").
		ListDeals(t.Context(), pipedrive.ListDealsParams{})
	require.NoError(t, err)
	assert.Equal(t, upstream.MaxRetryAfter, resp.RateLimit.Reset)
}
