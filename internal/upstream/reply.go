package upstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
)

// Default limits of a Reader.
const (
	// DefaultMaxBody bounds a success reply: a bigger one is refused with a
	// *BodyError of kind BodyTooLarge rather than read.
	DefaultMaxBody = 16 << 20
	// DefaultMaxErrorBody is how much of an error reply is kept to explain
	// it; the rest is discarded.
	DefaultMaxErrorBody = 64 << 10
	// MaxMessage bounds Error.Message and Error.Detail, in bytes.
	MaxMessage = 512
)

// drainLimit is how much of an unread reply is drained so that its
// connection can be reused; longer ones are closed mid-way.
const drainLimit = 64 << 10

// ErrBodyTooLarge is the cause of a *BodyError of kind BodyTooLarge.
var ErrBodyTooLarge = errors.New("reply body exceeds the size limit")

// ErrEmptyBody is the cause of a *BodyError of kind BodyEmpty.
var ErrEmptyBody = errors.New("reply body is empty")

// BodyKind says what was wrong with a 2xx reply's body.
type BodyKind string

// Kinds of BodyError.
const (
	// BodyTooLarge: the body exceeded the Reader's MaxBody.
	BodyTooLarge BodyKind = "too large"
	// BodyEmpty: there was no body where one was promised.
	BodyEmpty BodyKind = "empty"
	// BodyUnreadable: the connection failed while the body was read.
	BodyUnreadable BodyKind = "unreadable"
	// BodyMalformed: the body is not the JSON the API promises (syntax).
	BodyMalformed BodyKind = "malformed"
	// BodyUnexpected: valid JSON of another shape than the API promises.
	BodyUnexpected BodyKind = "unexpected shape"
)

// BodyError is a 2xx reply whose body could not be used: too large,
// empty, cut off, or not the JSON promised. The upstream acted on the
// request (for a write, its outcome is unknown to the caller), so it is
// not an *Error; errors.As tells the two apart.
type BodyError struct {
	Connector string
	// Status is the reply's (2xx) status.
	Status int
	Kind   BodyKind
	// Limit is the size limit a BodyTooLarge body exceeded.
	Limit int64
	// Err is the cause: ErrBodyTooLarge, ErrEmptyBody, the read error or
	// the JSON error (its text redacted).
	Err error
}

// Error implements error.
func (e *BodyError) Error() string {
	switch e.Kind {
	case BodyTooLarge:
		return fmt.Sprintf("%s: HTTP %d: reply body is larger than the %s limit", e.Connector, e.Status, formatBytes(e.Limit))
	case BodyEmpty:
		return fmt.Sprintf("%s: HTTP %d: empty response body", e.Connector, e.Status)
	case BodyUnexpected:
		return fmt.Sprintf("%s: HTTP %d: unexpected data shape: %v", e.Connector, e.Status, e.Err)
	case BodyUnreadable:
		return fmt.Sprintf("%s: HTTP %d: response body could not be read: %v", e.Connector, e.Status, e.Err)
	}
	return fmt.Sprintf("%s: HTTP %d: malformed response body: %v", e.Connector, e.Status, e.Err)
}

// Unwrap returns the cause.
func (e *BodyError) Unwrap() error { return e.Err }

func formatBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d-byte", n)
}

// ErrorParser extracts the caller-facing message and detail from an error
// reply's body, in a connector's own error shape. The body is at most
// MaxErrorBody bytes and already redacted; the Reader redacts and bounds
// what it returns again. An empty message means the status text.
type ErrorParser func(status int, body []byte) (message, detail string)

// Reader is the one reader of a connection's upstream replies, as
// go-github's CheckResponse is for its services: every reply, success or
// error, is read through it with a size limit, an error reply becomes an
// *Error (status, a short message, Retry-After), a 2xx reply whose body
// cannot be used becomes a *BodyError, and the connection's credentials
// are redacted from everything that leaves it.
//
// A Reader is configured once per client and safe for concurrent use.
type Reader struct {
	// Connector labels errors, e.g. "pipedrive".
	Connector string
	// MaxBody bounds a success body (0: DefaultMaxBody).
	MaxBody int64
	// MaxErrorBody bounds how much of an error body is read (0:
	// DefaultMaxErrorBody).
	MaxErrorBody int64
	// Clock dates a Retry-After given as an HTTP date when the reply has
	// no Date header (nil: the real clock).
	Clock clock.Clock
	// Redactor knows the connection's credentials (nil: none).
	Redactor *Redactor
	// ParseError reads the connector's error shape (nil: the body as
	// plain text, when it is text).
	ParseError ErrorParser
	// RetryHint is a connector's own wait signal, used on 429 and 503 when
	// the reply has no Retry-After (e.g. Pipedrive's x-ratelimit-reset).
	RetryHint func(h http.Header) (time.Duration, bool)
}

func (r *Reader) maxBody() int64 {
	if r.MaxBody > 0 {
		return r.MaxBody
	}
	return DefaultMaxBody
}

func (r *Reader) maxErrorBody() int64 {
	if r.MaxErrorBody > 0 {
		return r.MaxErrorBody
	}
	return DefaultMaxErrorBody
}

// Success reports whether resp has a 2xx status.
func Success(resp *http.Response) bool { return resp.StatusCode >= 200 && resp.StatusCode <= 299 }

// Check returns nil for a 2xx reply (its body untouched) and otherwise
// reads, closes and turns the reply into an *Error.
func (r *Reader) Check(resp *http.Response) error {
	if Success(resp) {
		return nil
	}
	return r.Error(resp)
}

// Error reads at most MaxErrorBody bytes of resp's body, closes it, and
// returns the *Error it describes, whatever resp's status: the message and
// detail ParseError finds (else the text of a plain-text body, else the
// status text), redacted and cut to MaxMessage bytes, and on 429 and 503
// the Retry-After (else RetryHint).
func (r *Reader) Error(resp *http.Response) *Error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, r.maxErrorBody()))
	Discard(resp)
	return r.ErrorFrom(resp.StatusCode, resp.Header, raw)
}

// ErrorFrom builds the *Error of a reply whose body was already read.
func (r *Reader) ErrorFrom(status int, h http.Header, body []byte) *Error {
	e := &Error{Connector: r.Connector, Status: status}
	body = r.Redactor.RedactBytes(body)
	trimmed := bytes.TrimSpace(body)
	if r.ParseError != nil && len(trimmed) > 0 {
		e.Message, e.Detail = r.ParseError(status, trimmed)
	}
	if e.Message == "" && e.Detail == "" && len(trimmed) > 0 && trimmed[0] != '<' && utf8.Valid(trimmed) && !json.Valid(trimmed) {
		// A plain-text reply (a gateway's, say) is the best explanation there is.
		e.Detail = string(trimmed)
	}
	e.Message = r.Text(e.Message)
	e.Detail = r.Text(e.Detail)
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		e.RetryAfter = r.RetryAfter(h)
	}
	return e
}

// NewError returns an *Error of the connector with upstream text that did
// not come from an error reply (a 2xx envelope saying it failed, say),
// made fit by Text; an empty message means the status text.
func (r *Reader) NewError(status int, message, detail string) *Error {
	e := &Error{Connector: r.Connector, Status: status, Message: r.Text(message), Detail: r.Text(detail)}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	return e
}

// RetryAfter is the wait an error reply asked for: its Retry-After, else
// the connector's RetryHint, clamped to [0, MaxRetryAfter]; 0 if none.
func (r *Reader) RetryAfter(h http.Header) time.Duration {
	if d, ok := RetryAfter(h, clock.OrReal(r.Clock).Now()); ok {
		return d
	}
	if r.RetryHint != nil {
		if d, ok := r.RetryHint(h); ok {
			return ClampDelay(d)
		}
	}
	return 0
}

// Text makes upstream text fit for an error: credentials redacted,
// whitespace runs and control characters collapsed to one space, and at
// most MaxMessage bytes (cut on a character boundary, marked with "…").
func (r *Reader) Text(s string) string {
	s = r.Redactor.Redact(s)
	if strings.IndexFunc(s, func(c rune) bool { return unicode.IsSpace(c) && c != ' ' || unicode.IsControl(c) }) >= 0 || strings.Contains(s, "  ") {
		s = strings.Join(strings.FieldsFunc(s, func(c rune) bool { return unicode.IsSpace(c) || unicode.IsControl(c) }), " ")
	}
	s = strings.TrimSpace(s)
	return Truncate(s, MaxMessage)
}

// Truncate cuts s to at most n bytes on a character boundary, marking a
// cut with "…".
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// Redact redacts upstream text that does not go through an *Error, such as
// a header value copied into a result.
func (r *Reader) Redact(s string) string { return r.Redactor.Redact(s) }

// ReadBody reads a 2xx reply's whole body, at most MaxBody bytes, and
// closes it. Its bytes are not redacted: decode them with DecodeBytes, or
// redact what is taken from them. A bigger body is a BodyTooLarge
// *BodyError (and is not read further); a failed read is BodyUnreadable.
func (r *Reader) ReadBody(resp *http.Response) ([]byte, error) {
	defer Discard(resp)
	lr := r.limit(resp.Body)
	body, err := io.ReadAll(lr)
	if err != nil {
		return nil, r.bodyError(resp.StatusCode, lr, err)
	}
	return body, nil
}

// DecodeJSON decodes a 2xx reply's JSON body into out as it streams in,
// through a reader that fails past MaxBody, then closes the body. Numbers
// decoded into interface values are json.Number (never float64), so ids
// above 2^53 keep every digit. Every string decoded into out is redacted
// (RedactValue). Errors are *BodyError: BodyEmpty for a body of only
// whitespace, BodyTooLarge, BodyUnreadable, BodyMalformed (not JSON, cut
// off, or data after the value) and BodyUnexpected (JSON of another shape).
func (r *Reader) DecodeJSON(resp *http.Response, out any) error {
	if err := r.decodeStream(resp, out); err != nil {
		return err
	}
	r.Redactor.RedactValue(out)
	return nil
}

// DecodeRaw is DecodeJSON without the redaction, for two cases: an
// envelope whose parts are decoded again with DecodeBytes (which redacts),
// and the reply of a token endpoint, whose values are the credentials
// themselves. Nothing decoded by DecodeRaw may be copied into a result, an
// error or a log without going through the Reader again.
func (r *Reader) DecodeRaw(resp *http.Response, out any) error {
	return r.decodeStream(resp, out)
}

func (r *Reader) decodeStream(resp *http.Response, out any) error {
	defer Discard(resp)
	lr := r.limit(resp.Body)
	return r.decode(resp.StatusCode, lr, lr, out)
}

// DecodeBytes decodes a body read with ReadBody into out, as DecodeJSON
// would (json.Number, redaction, *BodyError); status is the reply's.
func (r *Reader) DecodeBytes(status int, body []byte, out any) error {
	if err := r.decode(status, bytes.NewReader(body), nil, out); err != nil {
		return err
	}
	r.Redactor.RedactValue(out)
	return nil
}

// decode reads exactly one JSON value from src into out.
func (r *Reader) decode(status int, src io.Reader, lr *limitedReader, out any) error {
	dec := json.NewDecoder(src)
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		if errors.Is(err, io.EOF) {
			return &BodyError{Connector: r.Connector, Status: status, Kind: BodyEmpty, Err: ErrEmptyBody}
		}
		return r.bodyError(status, lr, err)
	}
	// One JSON value and nothing else, as json.Unmarshal would insist.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err == nil {
			return &BodyError{Connector: r.Connector, Status: status, Kind: BodyMalformed, Err: errors.New("data after the JSON value")}
		}
		return r.bodyError(status, lr, err)
	}
	return nil
}

// bodyError classifies a failure to read or decode a 2xx body; lr, when
// set, is the body reader, whose own failures are told from JSON ones.
func (r *Reader) bodyError(status int, lr *limitedReader, err error) *BodyError {
	e := &BodyError{Connector: r.Connector, Status: status}
	var syntax *json.SyntaxError
	switch {
	case errors.Is(err, ErrBodyTooLarge):
		e.Kind, e.Limit, e.Err = BodyTooLarge, r.maxBody(), ErrBodyTooLarge
		return e
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &syntax):
		// Cut off, or not JSON.
		e.Kind = BodyMalformed
	case lr != nil && lr.err != nil && errors.Is(err, lr.err):
		e.Kind = BodyUnreadable
	default:
		// A type mismatch, or a model's own UnmarshalJSON refusing a value.
		e.Kind = BodyUnexpected
	}
	e.Err = errors.New(Truncate(r.Redactor.Redact(strings.TrimPrefix(err.Error(), "json: ")), MaxMessage))
	return e
}

// limit wraps body so that reading past MaxBody fails with ErrBodyTooLarge.
func (r *Reader) limit(body io.Reader) *limitedReader {
	return &limitedReader{r: body, n: r.maxBody()}
}

// limitedReader is io.LimitReader that fails, instead of ending, when the
// underlying reader has more than n bytes. It remembers the underlying
// reader's failure.
type limitedReader struct {
	r   io.Reader
	n   int64 // bytes still allowed
	err error // the underlying reader's error, other than io.EOF
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		// The limit is reached: one more byte means the body is too large.
		var one [1]byte
		for range 100 {
			k, err := l.r.Read(one[:])
			if k > 0 {
				return 0, ErrBodyTooLarge
			}
			if err != nil {
				return 0, l.note(err)
			}
		}
		return 0, io.ErrNoProgress
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	k, err := l.r.Read(p)
	l.n -= int64(k)
	return k, l.note(err)
}

func (l *limitedReader) note(err error) error {
	if err != nil && !errors.Is(err, io.EOF) {
		l.err = err
	}
	return err
}

// Discard drains a little of an unread reply body, so that its connection
// can be reused, and closes it.
func Discard(resp *http.Response) {
	if resp == nil || resp.Body == nil {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
	_ = resp.Body.Close()
}
