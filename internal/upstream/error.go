// Package upstream holds the error type every connector client returns for a
// non-2xx reply, so that the MCP layer maps upstream failures in one place.
package upstream

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Error is an upstream API reply that was not a success.
type Error struct {
	// Connector names the upstream, e.g. "pipedrive".
	Connector string
	// Status is the HTTP status code.
	Status int
	// Message is the upstream's own error text, safe to show to a caller.
	Message string
	// Detail is any additional upstream explanation.
	Detail string
	// RetryAfter is how long the upstream asked us to wait (429/503), if it said.
	RetryAfter time.Duration
}

// Error implements error.
func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	s := fmt.Sprintf("%s: HTTP %d: %s", e.Connector, e.Status, msg)
	if e.Detail != "" && !strings.EqualFold(e.Detail, e.Message) {
		s += " (" + e.Detail + ")"
	}
	return s
}

// RetryAfter reads a Retry-After header given either as delay-seconds or
// as an HTTP date; a date is measured from the response's Date header when
// present (so clock skew does not matter), else from now. ok is false when
// the header is absent or malformed.
func RetryAfter(h http.Header, now time.Time) (d time.Duration, ok bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return 0, false
		}
		return time.Duration(min(s, int64(maxRetryAfterSeconds))) * time.Second, true
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	ref := now
	if date, err := http.ParseTime(h.Get("Date")); err == nil {
		ref = date
	}
	return max(at.Sub(ref), 0), true
}

// maxRetryAfterSeconds keeps absurd values from overflowing a Duration.
const maxRetryAfterSeconds = 365 * 24 * 60 * 60

// FlexInt64 reads a JSON number (integral or not) or a numeric string, as
// upstreams send counts and expires_in either way.
type FlexInt64 int64

// UnmarshalJSON implements json.Unmarshaler.
func (n *FlexInt64) UnmarshalJSON(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"`)
	if s == "" || s == "null" {
		*n = 0
		return nil
	}
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		*n = FlexInt64(v)
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		if len(s) > 40 {
			s = s[:40] + "…"
		}
		return fmt.Errorf("not a number: %q", s)
	}
	*n = FlexInt64(f)
	return nil
}
