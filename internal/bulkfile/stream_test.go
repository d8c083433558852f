package bulkfile

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// endless yields head once and then repeats item forever, so a parser that
// tried to load the whole input would never return.
type endless struct {
	head, item string
	pos        int
	started    bool
}

func (e *endless) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		src := e.item
		if !e.started {
			src = e.head
		}
		c := copy(p[n:], src[e.pos:])
		n += c
		e.pos += c
		if e.pos == len(src) {
			e.pos, e.started = 0, true
		}
	}
	return n, nil
}

func TestStreamingStopsAtRowLimit(t *testing.T) {
	for _, tc := range []struct {
		opt        Options
		head, item string
		row        int
	}{
		{Options{Format: FormatCSV, MaxRows: 1000}, "a,b\n", "1,2\n", 1002},
		{Options{Format: FormatJSON, MaxRows: 1000}, "[", `{"a":1},`, 1001},
	} {
		_, err := Validate(&endless{head: tc.head, item: tc.item}, tc.opt)
		var ve *ValidationError
		require.ErrorAs(t, err, &ve, tc.opt.Format)
		assert.Equal(t, []Problem{{Row: tc.row, Message: "more than 1000 data rows (the limit); split the file"}}, ve.Problems)
	}
}

func TestStreamingStopsAtByteLimit(t *testing.T) {
	opt := Options{Format: FormatJSON, MaxBytes: 1 << 20}
	sum, err := Validate(&endless{head: "[", item: `{"a":1},`}, opt)
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "the file is larger than the limit of 1048576 bytes", ve.Error())
	assert.Equal(t, int64(1<<20), sum.Bytes)
}
