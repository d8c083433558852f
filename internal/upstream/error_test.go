package upstream

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
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
		{"negative", "-1", "", 0, false},
		{"garbage", "soon", "", 0, false},
		{"date from now", date(now.Add(30 * time.Second)), "", 30 * time.Second, true},
		{"date from Date header", date(now.Add(30 * time.Second)), date(now.Add(20 * time.Second)), 10 * time.Second, true},
		{"date in the past", date(now.Add(-time.Minute)), "", 0, true},
		{"huge", "99999999999999", "", 365 * 24 * time.Hour, true},
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
		})
	}
}

func TestFlexInt64(t *testing.T) {
	for in, want := range map[string]FlexInt64{`3600`: 3600, `"3599"`: 3599, `12.7`: 12, `null`: 0, `""`: 0} {
		var n FlexInt64
		assert.NoError(t, json.Unmarshal([]byte(in), &n), in)
		assert.Equal(t, want, n, in)
	}
	var n FlexInt64
	assert.Error(t, json.Unmarshal([]byte(`"soon"`), &n))
}
