// Package upstream is the one place where connector clients turn HTTP
// replies into results or errors: the typed *Error every client returns for
// a non-2xx reply, the bounded Reader every reply goes through, the
// Redactor that keeps a connection's credentials out of everything a reply
// carries, the SentError that tells a write which may have been carried out
// from one that never left, and the lenient readers of upstream numbers and
// delays.
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
	// Message is the upstream's own error text, safe to show to a caller
	// (short, and with the connection's credentials redacted).
	Message string
	// Detail is any additional upstream explanation.
	Detail string
	// RetryAfter is how long the upstream asked us to wait (429/503), if it
	// said; never negative and never more than MaxRetryAfter.
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

// MaxRetryAfter bounds every delay read from an upstream's header, so that
// no arithmetic on it can overflow a time.Duration. The pause a connection
// actually takes is clamped much lower by the transport (internal/httpx).
const MaxRetryAfter = 365 * 24 * time.Hour

// RetryAfter reads a Retry-After header given either as delay-seconds or
// as an HTTP date; a date is measured from the response's Date header when
// present (so clock skew does not matter), else from now. The result is
// clamped to [0, MaxRetryAfter]: a date in the past or a negative count is
// 0, a huge count or a far-future date is MaxRetryAfter. ok is false when
// the header is absent or malformed.
func RetryAfter(h http.Header, now time.Time) (d time.Duration, ok bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if d, ok := ParseDelaySeconds(v); ok {
		return d, true
	}
	at, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	ref := now
	if date, err := http.ParseTime(h.Get("Date")); err == nil {
		ref = date
	}
	// time.Time.Sub saturates instead of overflowing.
	return ClampDelay(at.Sub(ref)), true
}

// ParseDelaySeconds reads a whole number of seconds, as Retry-After's
// delay-seconds or Pipedrive's x-ratelimit-reset carry it, with saturating
// arithmetic: a negative count is 0 and a count beyond MaxRetryAfter (even
// one beyond int64) is MaxRetryAfter. ok is false for anything but an
// optionally signed run of ASCII digits.
func ParseDelaySeconds(v string) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	neg := false
	switch {
	case strings.HasPrefix(v, "-"):
		neg, v = true, v[1:]
	case strings.HasPrefix(v, "+"):
		v = v[1:]
	}
	if v == "" {
		return 0, false
	}
	const limit = int64(MaxRetryAfter / time.Second)
	var s int64
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		if s <= limit {
			s = s*10 + int64(c-'0')
		}
	}
	if neg {
		return 0, true
	}
	return min(time.Duration(min(s, limit))*time.Second, MaxRetryAfter), true
}

// Seconds converts an upstream count of seconds (an expires_in, a reset)
// to a Duration with saturating arithmetic, clamped to [0, MaxRetryAfter].
func Seconds(n int64) time.Duration {
	const limit = int64(MaxRetryAfter / time.Second)
	return time.Duration(min(max(n, 0), limit)) * time.Second
}

// ClampDelay bounds an upstream-given delay to [0, MaxRetryAfter].
func ClampDelay(d time.Duration) time.Duration {
	return min(max(d, 0), MaxRetryAfter)
}

// FlexInt64 reads a JSON number or a numeric string, as upstreams send
// counts, ids and expires_in either way. It never goes through float64: an
// integer keeps every digit (ids above 2^53 included), and a number with a
// fraction or an exponent (12.7, 3.6e3) is truncated toward zero exactly.
// A value outside int64 is an error.
type FlexInt64 int64

// UnmarshalJSON implements json.Unmarshaler.
func (n *FlexInt64) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = strings.TrimSpace(s[1 : len(s)-1])
	}
	if s == "" || s == "null" {
		*n = 0
		return nil
	}
	v, err := ParseInt(s)
	if err != nil {
		return err
	}
	*n = FlexInt64(v)
	return nil
}

// ParseInt reads a decimal number written as JSON writes numbers (sign,
// digits, optional fraction, optional exponent) and returns its integer
// part exactly, truncated toward zero, without a float64 round trip.
func ParseInt(s string) (int64, error) {
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return v, nil
	}
	bad := func(why string) error {
		shown := s
		if len(shown) > 40 {
			shown = shown[:40] + "…"
		}
		return fmt.Errorf("not %s: %q", why, shown)
	}
	rest := s
	neg := false
	if rest != "" && (rest[0] == '-' || rest[0] == '+') {
		neg = rest[0] == '-'
		rest = rest[1:]
	}
	mant, exp, hasExp := rest, "", false
	if i := strings.IndexAny(rest, "eE"); i >= 0 {
		mant, exp, hasExp = rest[:i], rest[i+1:], true
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	if intPart == "" && frac == "" || !digits(intPart) || !digits(frac) {
		return 0, bad("a number")
	}
	e := 0
	if hasExp {
		eneg := false
		if exp != "" && (exp[0] == '-' || exp[0] == '+') {
			eneg = exp[0] == '-'
			exp = exp[1:]
		}
		if exp == "" || !digits(exp) {
			return 0, bad("a number")
		}
		// Exponents this large make the value 0 or overflow int64 anyway.
		if len(exp) > 6 {
			exp = "999999"
		}
		e, _ = strconv.Atoi(exp)
		if eneg {
			e = -e
		}
	}
	all := strings.TrimLeft(intPart+frac, "0")
	point := len(intPart) - (len(intPart+frac) - len(all)) + e // digits of all before the point
	if all == "" || point <= 0 {
		return 0, nil
	}
	if point > 19 {
		return 0, bad("an integer in range")
	}
	whole := all
	if point <= len(all) {
		whole = all[:point]
	} else {
		whole += strings.Repeat("0", point-len(all))
	}
	if neg {
		whole = "-" + whole
	}
	v, err := strconv.ParseInt(whole, 10, 64)
	if err != nil {
		return 0, bad("an integer in range")
	}
	return v, nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
