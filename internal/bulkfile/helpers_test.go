package bulkfile

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/xuri/excelize/v2"
)

// problems validates input and returns the content problems it reports.
func problems(t *testing.T, input string, opt Options) *ValidationError {
	t.Helper()
	_, err := Validate(strings.NewReader(input), opt)
	require.Error(t, err)
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	return ve
}

// onlyProblem asserts that input yields exactly one problem and returns it.
func onlyProblem(t *testing.T, input string, opt Options) Problem {
	t.Helper()
	ve := problems(t, input, opt)
	require.Len(t, ve.Problems, 1, "problems: %v", ve)
	return ve.Problems[0]
}

// xlsxSheet is one sheet of a generated workbook.
type xlsxSheet struct {
	name string
	rows [][]any // rows[i] is written to row i+1; a nil row is skipped
}

// makeXLSX builds a workbook with excelize's StreamWriter.
func makeXLSX(t testing.TB, sheets ...xlsxSheet) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer func() { require.NoError(t, f.Close()) }()
	for i, sh := range sheets {
		if i == 0 {
			require.NoError(t, f.SetSheetName("Sheet1", sh.name))
		} else {
			_, err := f.NewSheet(sh.name)
			require.NoError(t, err)
		}
		sw, err := f.NewStreamWriter(sh.name)
		require.NoError(t, err)
		for r, row := range sh.rows {
			if row == nil {
				continue
			}
			cell, err := excelize.CoordinatesToCellName(1, r+1)
			require.NoError(t, err)
			require.NoError(t, sw.SetRow(cell, row))
		}
		require.NoError(t, sw.Flush())
	}
	var buf bytes.Buffer
	require.NoError(t, f.Write(&buf))
	return buf.Bytes()
}
