package upstream

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	date := func(t time.Time) string { return t.Format(http.TimeFormat) }
	for _, tc := range []struct {
		name    string
		value   string
		dateHdr string
		want    time.Duration
		wantOK  bool
	}{
		{"seconds", "120", "", 2 * time.Minute, true},
		{"zero", "0", "", 0, true},
		{"spaces", " 3 ", "", 3 * time.Second, true},
		{"missing", "", "", 0, false},
		{"negative is 0", "-1", "", 0, true},
		{"garbage", "soon", "", 0, false},
		{"fraction", "1.5", "", 0, false},
		{"date from now", date(now.Add(30 * time.Second)), "", 30 * time.Second, true},
		{"date from Date header", date(now.Add(30 * time.Second)), date(now.Add(20 * time.Second)), 10 * time.Second, true},
		{"date in the past", date(now.Add(-time.Minute)), "", 0, true},
		// issue finding 6: hostile Retry-After — both forms saturate, none overflows.
		{"huge", "99999999999999", "", MaxRetryAfter, true},
		{"a year", "31536000", "", 365 * 24 * time.Hour, true},
		{"beyond int64", "92233720368547758070000", "", MaxRetryAfter, true},
		{"far-future date", "Fri, 31 Dec 9999 23:59:59 GMT", "", MaxRetryAfter, true},
		{"far-future date, ancient Date header", "Fri, 31 Dec 9999 23:59:59 GMT", "Mon, 01 Jan 0001 00:00:00 GMT", MaxRetryAfter, true},
		{"date before an absurd Date header", date(now), "Fri, 31 Dec 9999 23:59:59 GMT", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.value != "" {
				h.Set("Retry-After", tc.value)
			}
			if tc.dateHdr != "" {
				h.Set("Date", tc.dateHdr)
			}
			d, ok := RetryAfter(h, now)
			assert.Equal(t, tc.wantOK, ok)
			assert.Equal(t, tc.want, d)
			assert.GreaterOrEqual(t, d, time.Duration(0))
		})
	}
}

func TestSecondsSaturates(t *testing.T) {
	assert.Equal(t, time.Duration(0), Seconds(-5))
	assert.Equal(t, time.Minute, Seconds(60))
	assert.Equal(t, MaxRetryAfter, Seconds(1<<62))
	d, ok := ParseDelaySeconds("+7")
	assert.True(t, ok)
	assert.Equal(t, 7*time.Second, d)
	_, ok = ParseDelaySeconds("7s")
	assert.False(t, ok)
}

func TestFlexInt64(t *testing.T) {
	for in, want := range map[string]FlexInt64{
		`3600`: 3600, `"3599"`: 3599, `12.7`: 12, `null`: 0, `""`: 0, `-3.9`: -3, `3.6e3`: 3600, `"2e1"`: 20, `1e-5`: 0, `0.000`: 0,
		// issue finding 8: integer ids above 2^53 keep every digit, whatever their spelling.
		`9007199254740993`:     9007199254740993,
		`"9007199254740993"`:   9007199254740993,
		`9007199254740993.0`:   9007199254740993,
		`9.007199254740993e15`: 9007199254740993,
		`9223372036854775807`:  9223372036854775807,
	} {
		var n FlexInt64
		assert.NoError(t, json.Unmarshal([]byte(in), &n), in)
		assert.Equal(t, want, n, in)
	}
	for _, in := range []string{`"soon"`, `9223372036854775808`, `1e19`, `1e999999999`, `"1.2.3"`, `"-"`} {
		var n FlexInt64
		assert.Error(t, json.Unmarshal([]byte(in), &n), in)
	}
	v, err := ParseInt("-9007199254740993")
	require.NoError(t, err)
	assert.Equal(t, int64(-9007199254740993), v)
}
