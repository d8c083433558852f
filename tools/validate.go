package tools

import (
	"regexp"
	"strings"
	"time"
)

var hhmm = regexp.MustCompile(`^([01]\d|2[0-3]):[0-5]\d$`)

// CheckDate validates an optional YYYY-MM-DD argument.
func CheckDate(field, v string) *Error {
	if v == "" {
		return nil
	}
	if _, err := time.Parse(time.DateOnly, v); err != nil {
		return InvalidArgument(field, "%s must be a calendar date as YYYY-MM-DD, got %q", field, v)
	}
	return nil
}

// CheckClock validates an optional HH:MM argument (a time of day or a duration).
func CheckClock(field, v string) *Error {
	if v == "" {
		return nil
	}
	if !hhmm.MatchString(v) {
		return InvalidArgument(field, "%s must be HH:MM (24-hour, e.g. 09:30), got %q", field, v)
	}
	return nil
}

// ParseSince reads an optional point in time given as RFC 3339
// (2026-01-02T15:04:05Z) or as a date (2026-01-02, midnight UTC).
func ParseSince(field, v string) (time.Time, *Error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	return time.Time{}, InvalidArgument(field, "%s must be RFC 3339 (2026-01-02T15:04:05Z) or a date (2026-01-02), got %q", field, v)
}
