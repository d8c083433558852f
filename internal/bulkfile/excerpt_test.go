package bulkfile

import (
	"errors"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue finding 1: error messages quote input content only through
// Excerpt: at most 80 runes, escaped, marked when cut.
func TestExcerpt(t *testing.T) {
	assert.Equal(t, `"Amount"`, Excerpt("Amount"))
	assert.Equal(t, `"a\x00b\r\nc\u202ed\xff"`, Excerpt("a\x00b\r\nc\u202ed\xff"))
	long := strings.Repeat("é", 200) + "SECRET"
	got := Excerpt(long)
	assert.Equal(t, `"`+strings.Repeat("é", ExcerptRunes)+`"…`, got)
	assert.NotContains(t, got, "SECRET")
	environ := "PATH=/bin\x00" + strings.Repeat("X=1\x00", 100) + "TOKEN=secret\x00"
	got = Excerpt(environ)
	assert.NotContains(t, got, "TOKEN")
	assert.NotContains(t, got, "\x00")
	assert.LessOrEqual(t, utf8.RuneCountInString(got), 4*ExcerptRunes+3)

	msg := ExcerptError(errors.New(`invalid cell name "` + strings.Repeat("A", 1000) + "\x00\"\ntail"))
	assert.True(t, strings.HasPrefix(msg, `invalid cell name "AAA`))
	assert.True(t, strings.HasSuffix(msg, "…"))
	assert.LessOrEqual(t, utf8.RuneCountInString(msg), 2*ExcerptRunes+1)
	assert.Equal(t, `zip: not a valid zip file`, ExcerptError(errors.New("zip: not a valid zip file")))
	assert.Equal(t, `a\x00b "q"`, ExcerptError(errors.New("a\x00b \"q\"")))
}

// Empty rows of alternating widths are remembered only up to the row
// limit: a file of millions of them takes bounded memory.
func TestAlternatingEmptyRowsTakeBoundedMemory(t *testing.T) {
	input := "a,b\n1,2\n" + strings.Repeat(",\n,,\n", 1_000_000)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	sum, err := Validate(strings.NewReader(input), Options{Format: FormatCSV, MaxRows: 1000})
	runtime.ReadMemStats(&after)
	require.NoError(t, err, "trailing empty rows are ignored")
	assert.Equal(t, 1, sum.Rows)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(16<<20))

	// Followed by data, they are data rows, checked as before.
	p := onlyProblem(t, "a,b\n1,2\n"+strings.Repeat(",\n,,\n", 1000)+"3,4\n", Options{Format: FormatCSV, MaxRows: 1000, MaxProblems: 1})
	assert.Equal(t, Problem{Row: 4, Message: "expected 2 columns, found 3"}, p)
	ve := problems(t, "a,b\n1,2\n"+strings.Repeat(",\n,\n", 20)+"3,4\n", Options{Format: FormatCSV, MaxRows: 10})
	assert.Equal(t, []Problem{{Row: 12, Message: "more than 10 data rows (the limit); split the file"}}, ve.Problems)
}
