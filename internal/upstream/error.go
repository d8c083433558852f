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

// ParseRetryAfter reads a Retry-After header value given either as seconds
// or as an HTTP date, relative to now. It returns 0 when absent or malformed.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
