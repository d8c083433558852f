package upstream

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
)

// jsonStream is an endless-looking JSON reply generated on the fly: a
// list of rows, size bytes in all, never held in memory.
type jsonStream struct {
	size, sent int64
	row        []byte
	pos        int
}

// NewJSONStream returns a reader of a JSON array of size bytes.
func newJSONStream(size int64) *jsonStream {
	return &jsonStream{size: size, row: []byte(`{"id":9007199254740993,"title":"a row of a very large reply"},`)}
}

func (s *jsonStream) Read(p []byte) (int, error) {
	if s.sent >= s.size {
		return 0, io.EOF
	}
	n := 0
	if s.sent == 0 {
		n = copy(p, "[")
	}
	for n < len(p) && s.sent+int64(n) < s.size {
		k := copy(p[n:], s.row[s.pos:])
		n += k
		s.pos = (s.pos + k) % len(s.row)
	}
	s.sent += int64(n)
	return n, nil
}

func reply(status int, body io.Reader, headers ...string) *http.Response {
	h := http.Header{}
	for i := 0; i+1 < len(headers); i += 2 {
		h.Set(headers[i], headers[i+1])
	}
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(body)}
}

// issue finding 5: a reply is read with a size limit — a 400 MB success
// reply, streamed, costs about the limit, not its size, and is refused
// with a clear error.
func TestReaderRefusesHugeSuccessBody(t *testing.T) {
	const size = 400 << 20
	rd := &Reader{Connector: "pipedrive"}
	stream := newJSONStream(size)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var rows []map[string]any
	err := rd.DecodeJSON(reply(200, stream), &rows)
	runtime.ReadMemStats(&after)

	var be *BodyError
	require.ErrorAs(t, err, &be)
	assert.Equal(t, BodyTooLarge, be.Kind)
	assert.Equal(t, int64(DefaultMaxBody), be.Limit)
	assert.ErrorIs(t, err, ErrBodyTooLarge)
	assert.Equal(t, "pipedrive: HTTP 200: reply body is larger than the 16 MiB limit", err.Error())
	read := stream.sent
	assert.Less(t, read, int64(DefaultMaxBody+drainLimit+64<<10), "reading stops at the limit")
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("400 MiB reply: read %.1f MiB, allocated %.1f MiB in all", float64(read)/(1<<20), float64(alloc)/(1<<20))
	assert.Less(t, alloc, uint64(96<<20), "memory is bounded by the limit, not the reply")
}

// issue finding 5: the error body kept is bounded too.
func TestReaderBoundsErrorBody(t *testing.T) {
	rd := &Reader{Connector: "workspan"}
	stream := newJSONStream(400 << 20)
	e := rd.Error(reply(500, stream))
	assert.Equal(t, 500, e.Status)
	assert.LessOrEqual(t, stream.sent, int64(DefaultMaxErrorBody+drainLimit+64<<10))
	assert.LessOrEqual(t, len(e.Error()), 2*MaxMessage)
}

func TestReaderSmallLimit(t *testing.T) {
	rd := &Reader{Connector: "x", MaxBody: 10}
	var v any
	err := rd.DecodeJSON(reply(200, strings.NewReader(`{"a":"0123456789"}`)), &v)
	var be *BodyError
	require.ErrorAs(t, err, &be)
	assert.Equal(t, BodyTooLarge, be.Kind)
	assert.Contains(t, err.Error(), "10-byte limit")

	require.NoError(t, rd.DecodeJSON(reply(200, strings.NewReader(`{"a":"01"}`)), &v), "exactly the limit is fine")
	body, err := rd.ReadBody(reply(200, strings.NewReader(strings.Repeat("x", 11))))
	assert.Nil(t, body)
	require.ErrorAs(t, err, &be)
	assert.Equal(t, BodyTooLarge, be.Kind)
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset by peer") }

// issue finding 8: a 2xx reply whose body cannot be used is a distinct
// error type, not an *Error, so that writes can report an unknown outcome.
func TestReaderBodyErrors(t *testing.T) {
	rd := &Reader{Connector: "partnercenter"}
	for _, tc := range []struct {
		name string
		body io.Reader
		kind BodyKind
	}{
		{"empty", strings.NewReader(""), BodyEmpty},
		{"blank", strings.NewReader(" \n"), BodyEmpty},
		{"cut off", strings.NewReader(`{"id":`), BodyMalformed},
		{"html", strings.NewReader(`<html>maintenance</html>`), BodyMalformed},
		{"trailing value", strings.NewReader(`{"id":"1"} {"id":"2"}`), BodyMalformed},
		{"trailing garbage", strings.NewReader(`{"id":"1"} x`), BodyMalformed},
		{"wrong shape", strings.NewReader(`[1,2]`), BodyUnexpected},
		{"wrong field type", strings.NewReader(`{"id":1}`), BodyUnexpected},
		{"unreadable", io.MultiReader(strings.NewReader(`{"id":`), failingReader{}), BodyUnreadable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out struct {
				ID string `json:"id"`
			}
			err := rd.DecodeJSON(reply(200, tc.body), &out)
			var be *BodyError
			require.ErrorAs(t, err, &be)
			assert.Equal(t, tc.kind, be.Kind, "%v", err)
			assert.Equal(t, 200, be.Status)
			var ue *Error
			assert.False(t, errors.As(err, &ue), "not an upstream error reply")
		})
	}
	var n struct{ ID any }
	require.NoError(t, rd.DecodeJSON(reply(200, strings.NewReader(`{"ID":9007199254740993}`)), &n))
	assert.Equal(t, "9007199254740993", fmt.Sprint(n.ID), "numbers in interfaces stay exact")
}

// issue finding 7: secrets echoed — whatever encoding the upstream echoes
// a credential in, no error text carries it.
func TestReaderRedactsErrorReplies(t *testing.T) {
	const token = "pd-token/0123+abc=="
	parse := func(_ int, body []byte) (string, string) {
		s := string(body)
		return s, "detail " + s
	}
	rd := &Reader{Connector: "pipedrive", Redactor: NewRedactor(token), ParseError: parse}
	for name, enc := range encodings(token) {
		body := `{"error":"bad token ` + enc + `", "echo":"?api_token=` + url.QueryEscape(token) + `"}`
		e := rd.Error(reply(400, strings.NewReader(body)))
		for _, form := range encodings(token) {
			assert.NotContains(t, e.Error(), form, "%s: %s", name, e.Error())
		}
		assert.Contains(t, e.Message, Redacted, name)
	}
	// A credential cut in half by the message limit never shows either.
	long := strings.Repeat("x", MaxMessage-5) + token
	e := rd.Error(reply(400, strings.NewReader(long)))
	assert.NotContains(t, e.Message, token[:5])

	// Decoded success replies are redacted as well.
	var out struct{ Title string }
	require.NoError(t, rd.DecodeJSON(reply(200, strings.NewReader(`{"Title":"`+url.QueryEscape(token)+`"}`)), &out))
	assert.Equal(t, Redacted, out.Title)
}

func TestReaderErrorShape(t *testing.T) {
	clk := clock.NewFake(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))
	rd := &Reader{Connector: "x", Clock: clk, RetryHint: func(h http.Header) (time.Duration, bool) {
		return ParseDelaySeconds(h.Get("X-Reset"))
	}}
	e := rd.Error(reply(429, strings.NewReader("slow down\n\tplease"), "Retry-After", "7"))
	assert.Equal(t, 7*time.Second, e.RetryAfter)
	assert.Equal(t, "Too Many Requests", e.Message)
	assert.Equal(t, "slow down please", e.Detail)

	e = rd.Error(reply(503, strings.NewReader(""), "X-Reset", "99999999999999999999"))
	assert.Equal(t, MaxRetryAfter, e.RetryAfter, "the hint saturates")
	e = rd.Error(reply(429, strings.NewReader(""), "Retry-After", "Fri, 31 Dec 9999 23:59:59 GMT"))
	assert.Equal(t, MaxRetryAfter, e.RetryAfter)

	e = rd.Error(reply(400, strings.NewReader(strings.Repeat("é", 4000))))
	assert.LessOrEqual(t, len(e.Detail), MaxMessage+len("…"))
	assert.True(t, strings.HasSuffix(e.Detail, "…"))

	e = rd.Error(reply(502, strings.NewReader(`<html>bad gateway</html>`)))
	assert.Equal(t, "Bad Gateway", e.Message)
	assert.Empty(t, e.Detail, "markup is no explanation")
}
