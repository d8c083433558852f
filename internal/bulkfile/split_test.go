package bulkfile

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func collect(t *testing.T, input string, opt Options, per int) ([]Chunk, Summary, error) {
	t.Helper()
	var chunks []Chunk
	sum, err := Split(strings.NewReader(input), opt, per, func(c Chunk) error {
		chunks = append(chunks, c)
		return nil
	})
	return chunks, sum, err
}

func readCSV(t *testing.T, body []byte, delim rune) [][]string {
	t.Helper()
	r := csv.NewReader(bytes.NewReader(body))
	r.Comma = delim
	recs, err := r.ReadAll()
	require.NoError(t, err)
	return recs
}

func csvRows(n int, delim string) string {
	var b strings.Builder
	b.WriteString("id" + delim + "name" + delim + "note\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%d%sname %d%s\"x%sy\nz\"\n", i, delim, i, delim, delim)
	}
	return b.String()
}

func TestSplitCSV(t *testing.T) {
	chunks, sum, err := collect(t, csvRows(10, ","), csvOpt, 3)
	require.NoError(t, err)
	assert.Equal(t, 10, sum.Rows)
	require.Len(t, chunks, 4)
	wantRows := []int{3, 3, 3, 1}
	wantFirst := []int{2, 5, 8, 11}
	id := 1
	for i, c := range chunks {
		assert.Equal(t, i, c.Index)
		assert.Equal(t, wantRows[i], c.Rows)
		assert.Equal(t, wantFirst[i], c.FirstRow)
		assert.Equal(t, FormatCSV, c.Format)
		recs := readCSV(t, c.Body, ',')
		require.Len(t, recs, c.Rows+1)
		assert.Equal(t, []string{"id", "name", "note"}, recs[0])
		for _, rec := range recs[1:] {
			assert.Equal(t, []string{fmt.Sprint(id), fmt.Sprintf("name %d", id), "x,y\nz"}, rec)
			id++
		}
		// Each chunk validates on its own.
		s, err := Validate(bytes.NewReader(c.Body), csvOpt)
		require.NoError(t, err)
		assert.Equal(t, c.Rows, s.Rows)
	}
}

func TestSplitCSVKeepsDelimiterAndExactChunks(t *testing.T) {
	chunks, _, err := collect(t, "\xEF\xBB\xBF"+csvRows(6, ";"), Options{Format: FormatCSV, Delimiter: ';'}, 3)
	require.NoError(t, err)
	require.Len(t, chunks, 2)
	for _, c := range chunks {
		assert.True(t, bytes.HasPrefix(c.Body, []byte("id;name;note\n")), string(c.Body))
		assert.Len(t, readCSV(t, c.Body, ';'), 4)
	}
}

func TestSplitCSVNoHeader(t *testing.T) {
	chunks, sum, err := collect(t, "a,1\nb,2\nc,3\n", Options{Format: FormatCSV, NoHeader: true}, 2)
	require.NoError(t, err)
	assert.Equal(t, []string{"column_1", "column_2"}, sum.Columns)
	require.Len(t, chunks, 2)
	assert.Equal(t, "a,1\nb,2\n", string(chunks[0].Body))
	assert.Equal(t, 1, chunks[0].FirstRow)
	assert.Equal(t, "c,3\n", string(chunks[1].Body))
	assert.Equal(t, 3, chunks[1].FirstRow)
}

func TestSplitCSVDropsTrailingEmptyRows(t *testing.T) {
	chunks, _, err := collect(t, "a,b\n1,2\n,\n3,4\n,\n,\n", csvOpt, 10)
	require.NoError(t, err)
	require.Len(t, chunks, 1)
	assert.Equal(t, "a,b\n1,2\n,\n3,4\n", string(chunks[0].Body))
	assert.Equal(t, 3, chunks[0].Rows)
}

func TestSplitJSON(t *testing.T) {
	var b strings.Builder
	b.WriteString("[")
	for i := 1; i <= 10; i++ {
		if i > 1 {
			b.WriteString(",\n")
		}
		fmt.Fprintf(&b, `{"id": %d, "name": "<n%d> & \"q\"", "amount": 1.50, "ok": true, "x": null}`, i, i)
	}
	b.WriteString("]")
	chunks, sum, err := collect(t, b.String(), jsonOpt, 3)
	require.NoError(t, err)
	assert.Equal(t, 10, sum.Rows)
	require.Len(t, chunks, 4)
	id := 1
	for i, c := range chunks {
		assert.Equal(t, []int{3, 3, 3, 1}[i], c.Rows)
		assert.Equal(t, []int{1, 4, 7, 10}[i], c.FirstRow)
		assert.Equal(t, FormatJSON, c.Format)
		require.True(t, json.Valid(c.Body), string(c.Body))
		var objs []map[string]any
		require.NoError(t, json.Unmarshal(c.Body, &objs))
		require.Len(t, objs, c.Rows)
		for _, o := range objs {
			assert.Equal(t, map[string]any{"id": float64(id), "name": fmt.Sprintf(`<n%d> & "q"`, id), "amount": 1.5, "ok": true, "x": nil}, o)
			id++
		}
	}
	// Numbers are copied as written, not re-formatted.
	assert.Contains(t, string(chunks[0].Body), `"amount":1.50`)
	assert.Contains(t, string(chunks[0].Body), `"<n1> & \"q\""`)
}

func TestSplitXLSX(t *testing.T) {
	rows := [][]any{{"name", "amount"}}
	for i := 1; i <= 5; i++ {
		rows = append(rows, []any{fmt.Sprintf("n;%d", i), i})
	}
	data := makeXLSX(t, xlsxSheet{name: "S", rows: rows})
	chunks, _, err := collect(t, string(data), xlsxOpt, 2)
	require.NoError(t, err)
	require.Len(t, chunks, 3)
	assert.Equal(t, "name,amount\nn;1,1\nn;2,2\n", string(chunks[0].Body))
	assert.Equal(t, 2, chunks[0].FirstRow)
	assert.Equal(t, "name,amount\nn;5,5\n", string(chunks[2].Body))
	assert.Equal(t, FormatCSV, chunks[2].Format)
}

func TestSplitFailsLikeValidate(t *testing.T) {
	input := csvRows(10, ",")
	// Break data row 8 (file row 9) by dropping a field.
	input = strings.Replace(input, "8,name 8,", "8,", 1)

	_, verr := Validate(strings.NewReader(input), csvOpt)
	require.Error(t, verr)
	chunks, _, serr := collect(t, input, csvOpt, 3)
	require.Error(t, serr)
	assert.Equal(t, verr, serr)
	var ve *ValidationError
	require.ErrorAs(t, serr, &ve)
	assert.Equal(t, []Problem{{Row: 9, Message: "expected 3 columns, found 2 (line 16)"}}, ve.Problems)
	// Only chunks completed before the bad row were handed out.
	require.Len(t, chunks, 2)
	assert.Equal(t, 5, chunks[1].FirstRow)

	jin := `[{"a":1},{"a":2},{"a":{"b":1}},{"a":4}]`
	_, verr = Validate(strings.NewReader(jin), jsonOpt)
	chunks, _, serr = collect(t, jin, jsonOpt, 2)
	assert.Equal(t, verr, serr)
	assert.Len(t, chunks, 1)
}

func TestSplitEmitErrorAndArguments(t *testing.T) {
	boom := errors.New("upload failed")
	calls := 0
	_, err := Split(strings.NewReader(csvRows(10, ",")), csvOpt, 3, func(Chunk) error {
		calls++
		return boom
	})
	require.ErrorIs(t, err, boom)
	assert.Equal(t, 1, calls)

	_, err = Split(strings.NewReader("a\n1\n"), csvOpt, 0, func(Chunk) error { return nil })
	require.ErrorContains(t, err, "rowsPerChunk")
	_, err = Split(strings.NewReader("a\n1\n"), csvOpt, 1, nil)
	require.Error(t, err)
}
