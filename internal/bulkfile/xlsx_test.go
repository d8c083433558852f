package bulkfile

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var xlsxOpt = Options{Format: FormatXLSX}

func xlsxProblem(t *testing.T, data []byte, opt Options) Problem {
	t.Helper()
	return onlyProblem(t, string(data), opt)
}

func TestXLSXValid(t *testing.T) {
	data := makeXLSX(t, xlsxSheet{name: "Deals", rows: [][]any{
		{"name", "amount", "note"},
		{"Acme", 10, "a, b"},
		{"Beta", 20.5, "line1\nline2"},
		{"Gamma", 30}, // short row: the missing cell is empty
	}})
	sum, err := Validate(bytes.NewReader(data), xlsxOpt)
	require.NoError(t, err)
	assert.Equal(t, 3, sum.Rows)
	assert.Equal(t, []string{"name", "amount", "note"}, sum.Columns)
	assert.Equal(t, int64(len(data)), sum.Bytes)
}

func TestXLSXSheetSelection(t *testing.T) {
	data := makeXLSX(t,
		xlsxSheet{name: "First", rows: [][]any{{"a"}, {1}}},
		xlsxSheet{name: "Second", rows: [][]any{{"x", "y"}, {1, 2}, {3, 4}}},
	)
	sum, err := Validate(bytes.NewReader(data), Options{Format: FormatXLSX, Sheet: "Second"})
	require.NoError(t, err)
	assert.Equal(t, 2, sum.Rows)
	assert.Equal(t, []string{"x", "y"}, sum.Columns)

	sum, err = Validate(bytes.NewReader(data), xlsxOpt)
	require.NoError(t, err)
	assert.Equal(t, []string{"a"}, sum.Columns)

	p := xlsxProblem(t, data, Options{Format: FormatXLSX, Sheet: "Third"})
	assert.Equal(t, Problem{Message: `sheet "Third" not found; the workbook has sheets "First", "Second"`}, p)
}

func TestXLSXNotAWorkbook(t *testing.T) {
	p := onlyProblem(t, "name,amount\nAcme,1\n", xlsxOpt)
	assert.Equal(t, "not an xlsx workbook: the file is not a zip archive (is it a CSV or another format renamed to .xlsx?)", p.Message)

	// Looks like a zip but is not one.
	p = onlyProblem(t, "PK\x03\x04garbage", xlsxOpt)
	assert.Contains(t, p.Message, "not an xlsx workbook: ")

	p = onlyProblem(t, "", xlsxOpt)
	assert.Equal(t, Problem{Message: "the file is empty"}, p)
}

func TestXLSXHeaderProblems(t *testing.T) {
	data := makeXLSX(t, xlsxSheet{name: "S", rows: [][]any{nil, {"a", "b"}, {1, 2}}})
	assert.Equal(t, Problem{Row: 1, Message: "the header row is empty: the first row must name the columns"}, xlsxProblem(t, data, xlsxOpt))

	data = makeXLSX(t, xlsxSheet{name: "S", rows: [][]any{{"Amount", "name", "amount "}, {1, 2, 3}}})
	assert.Equal(t, Problem{Row: 1, Column: "amount ", Message: `duplicate column name (column A is also "Amount")`}, xlsxProblem(t, data, xlsxOpt))

	data = makeXLSX(t, xlsxSheet{name: "S", rows: [][]any{{"a", nil, "c"}, {1, 2, 3}}})
	assert.Equal(t, Problem{Row: 1, Column: "B", Message: "empty column name"}, xlsxProblem(t, data, xlsxOpt))

	data = makeXLSX(t, xlsxSheet{name: "S", rows: [][]any{{"a", "b"}}})
	assert.Equal(t, Problem{Message: "the file has a header row but no data rows"}, xlsxProblem(t, data, xlsxOpt))

	data = makeXLSX(t, xlsxSheet{name: "S"})
	assert.Equal(t, Problem{Message: `sheet "S" is empty`}, xlsxProblem(t, data, xlsxOpt))
}

func TestXLSXValueOutsideHeader(t *testing.T) {
	data := makeXLSX(t, xlsxSheet{name: "S", rows: [][]any{
		{"a", "b"},
		{1, 2},
		{1, 2, nil, "stray"},
	}})
	assert.Equal(t, Problem{Row: 3, Column: "D", Message: "expected 2 columns, found 4: cell D3 is outside the header"}, xlsxProblem(t, data, xlsxOpt))
}

func TestXLSXEmptyRows(t *testing.T) {
	// Row 3 is empty between data rows; rows 5 and 6 are trailing empties.
	data := makeXLSX(t, xlsxSheet{name: "S", rows: [][]any{
		{"a", "b"}, {1, 2}, nil, {3, 4}, {"", ""}, {nil, ""},
	}})
	sum, err := Validate(bytes.NewReader(data), xlsxOpt)
	require.NoError(t, err)
	assert.Equal(t, 3, sum.Rows)
}

func TestXLSXNoHeader(t *testing.T) {
	data := makeXLSX(t, xlsxSheet{name: "S", rows: [][]any{{"Acme", 1}, {"Beta", 2}}})
	sum, err := Validate(bytes.NewReader(data), Options{Format: FormatXLSX, NoHeader: true})
	require.NoError(t, err)
	assert.Equal(t, 2, sum.Rows)
	assert.Equal(t, []string{"column_1", "column_2"}, sum.Columns)
}

func TestXLSXLimits(t *testing.T) {
	data := makeXLSX(t, xlsxSheet{name: "S", rows: [][]any{{"a"}, {1}, {2}, {3}}})
	assert.Equal(t, Problem{Row: 4, Message: "more than 2 data rows (the limit); split the file"},
		xlsxProblem(t, data, Options{Format: FormatXLSX, MaxRows: 2}))
	assert.Equal(t, Problem{Message: "the file is larger than the limit of 100 bytes"},
		xlsxProblem(t, data, Options{Format: FormatXLSX, MaxBytes: 100}))
}
