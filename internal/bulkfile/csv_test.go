package bulkfile

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var csvOpt = Options{Format: FormatCSV}

func TestCSVValid(t *testing.T) {
	input := "\xEF\xBB\xBFname,amount,note\n" +
		"Acme,10,\"a, b\"\n" +
		"Beta,20,\"line1\nline2\"\n" +
		"Gamma,30,\"say \"\"hi\"\"\"\n"
	sum, err := Validate(strings.NewReader(input), csvOpt)
	require.NoError(t, err)
	assert.Equal(t, 3, sum.Rows)
	assert.Equal(t, []string{"name", "amount", "note"}, sum.Columns)
	assert.Equal(t, int64(len(input)), sum.Bytes)
}

func TestCSVSemicolonAndCRLF(t *testing.T) {
	input := "name;amount\r\nAcme;\"1,5\"\r\nBeta;2\r\n"
	sum, err := Validate(strings.NewReader(input), Options{Format: FormatCSV, Delimiter: ';'})
	require.NoError(t, err)
	assert.Equal(t, 2, sum.Rows)
	assert.Equal(t, []string{"name", "amount"}, sum.Columns)
}

func TestCSVTabDelimiter(t *testing.T) {
	sum, err := Validate(strings.NewReader("a\tb\n1\t2\n"), Options{Format: FormatCSV, Delimiter: '\t'})
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, sum.Columns)
}

func TestCSVNoHeader(t *testing.T) {
	sum, err := Validate(strings.NewReader("Acme,10,x\nBeta,20,y\n"), Options{Format: FormatCSV, NoHeader: true})
	require.NoError(t, err)
	assert.Equal(t, 2, sum.Rows)
	assert.Equal(t, []string{"column_1", "column_2", "column_3"}, sum.Columns)

	p := onlyProblem(t, "a,b\nc\n", Options{Format: FormatCSV, NoHeader: true})
	assert.Equal(t, Problem{Row: 2, Message: "expected 2 columns, found 1"}, p)
}

func TestCSVTrailingEmptyRowsIgnored(t *testing.T) {
	sum, err := Validate(strings.NewReader("a,b\n1,2\n,\n,\n\n"), csvOpt)
	require.NoError(t, err)
	assert.Equal(t, 1, sum.Rows)

	// An empty row followed by data is a data row and must have the right width.
	sum, err = Validate(strings.NewReader("a,b\n1,2\n,\n3,4\n"), csvOpt)
	require.NoError(t, err)
	assert.Equal(t, 3, sum.Rows)

	p := onlyProblem(t, "a,b\n1,2\n,,\n3,4\n", csvOpt)
	assert.Equal(t, Problem{Row: 3, Message: "expected 2 columns, found 3"}, p)
}

func TestCSVEmpty(t *testing.T) {
	for _, in := range []string{"", "\xEF\xBB\xBF"} {
		p := onlyProblem(t, in, csvOpt)
		assert.Equal(t, Problem{Message: "the file is empty"}, p)
	}
}

func TestCSVHeaderMissing(t *testing.T) {
	p := onlyProblem(t, "\nname,amount\nAcme,1\n", csvOpt)
	assert.Equal(t, Problem{Row: 1, Message: "the header row is missing: the first line is empty"}, p)

	p = onlyProblem(t, ",,\n1,2,3\n", csvOpt)
	assert.Equal(t, Problem{Row: 1, Message: "the header row is empty: the first row must name the columns"}, p)
}

func TestCSVHeaderOnly(t *testing.T) {
	p := onlyProblem(t, "name,amount\n", csvOpt)
	assert.Equal(t, Problem{Message: "the file has a header row but no data rows"}, p)
}

func TestCSVEmptyColumnName(t *testing.T) {
	p := onlyProblem(t, "name, ,amount\nA,1,2\n", csvOpt)
	assert.Equal(t, Problem{Row: 1, Column: "B", Message: "empty column name"}, p)
}

func TestCSVDuplicateColumnName(t *testing.T) {
	p := onlyProblem(t, "Name,amount, name \nA,1,2\n", csvOpt)
	assert.Equal(t, Problem{Row: 1, Column: " name ", Message: `duplicate column name (column A is also "Name")`}, p)
}

func TestCSVRaggedRows(t *testing.T) {
	input := "a,b,c\n1,2,3\n1,2\n1,2,3,4\n1,2,3\n"
	ve := problems(t, input, csvOpt)
	assert.Equal(t, []Problem{
		{Row: 3, Message: "expected 3 columns, found 2"},
		{Row: 4, Message: "expected 3 columns, found 4"},
	}, ve.Problems)
	assert.False(t, ve.Truncated)
	assert.Equal(t, "row 3: expected 3 columns, found 2; row 4: expected 3 columns, found 4", ve.Error())
}

func TestCSVRaggedRowAfterMultilineFieldNamesLine(t *testing.T) {
	p := onlyProblem(t, "a,b\n1,\"x\ny\"\n1\n", csvOpt)
	assert.Equal(t, Problem{Row: 3, Message: "expected 2 columns, found 1 (line 4)"}, p)
}

func TestCSVInvalidUTF8(t *testing.T) {
	p := onlyProblem(t, "name,amount\nAcme,1\nB\xffeta,2\n", csvOpt)
	assert.Equal(t, Problem{Row: 3, Column: "name", Message: "invalid UTF-8 text"}, p)

	p = onlyProblem(t, "na\xffme,amount\nAcme,1\n", csvOpt)
	assert.Equal(t, Problem{Row: 1, Column: "A", Message: "invalid UTF-8 in the column name"}, p)
}

func TestCSVWrongDelimiter(t *testing.T) {
	p := onlyProblem(t, "a;b;c\n1;2;3\n", csvOpt)
	assert.Equal(t, Problem{Row: 1, Message: `the header has one column "a;b;c": is the delimiter ';'?`}, p)

	p = onlyProblem(t, "a,b,c\n1,2,3\n", Options{Format: FormatCSV, Delimiter: ';'})
	assert.Equal(t, `the header has one column "a,b,c": is the delimiter ','?`, p.Message)

	p = onlyProblem(t, "a\tb\n1\t2\n", csvOpt)
	assert.Equal(t, `the header has one column "a\tb": is the delimiter '\t' (tab)?`, p.Message)

	// A genuine single-column file is fine.
	_, err := Validate(strings.NewReader("email\na@example.com\n"), csvOpt)
	require.NoError(t, err)
}

func TestCSVBareQuote(t *testing.T) {
	ve := problems(t, "name,note\nAcme,ok\nBeta,ab\"c\nGamma,fine\n", csvOpt)
	require.Len(t, ve.Problems, 1)
	p := ve.Problems[0]
	assert.Equal(t, 3, p.Row)
	assert.Contains(t, p.Message, "line 3, column 8: bare \" in non-quoted-field")
	assert.Contains(t, p.Message, `double the quotes`)
}

func TestCSVUnterminatedQuote(t *testing.T) {
	ve := problems(t, "name,note\nAcme,\"open\nBeta,x\n", csvOpt)
	require.NotEmpty(t, ve.Problems)
	assert.Equal(t, 2, ve.Problems[0].Row)
	assert.Contains(t, ve.Problems[0].Message, `extraneous or missing " in quoted-field`)
}

func TestCSVByteLimit(t *testing.T) {
	p := onlyProblem(t, "name,amount\nAcme,1\nBeta,2\n", Options{Format: FormatCSV, MaxBytes: 15})
	assert.Equal(t, Problem{Message: "the file is larger than the limit of 15 bytes"}, p)

	// The limit falls inside a quoted multi-line field.
	p = onlyProblem(t, "a,b\n1,\"x\ny\nz\"\n", Options{Format: FormatCSV, MaxBytes: 10})
	assert.Equal(t, Problem{Message: "the file is larger than the limit of 10 bytes"}, p)

	// Exactly at the limit is accepted.
	in := "a,b\n1,2\n"
	sum, err := Validate(strings.NewReader(in), Options{Format: FormatCSV, MaxBytes: int64(len(in))})
	require.NoError(t, err)
	assert.Equal(t, int64(len(in)), sum.Bytes)
}

func TestCSVRowLimit(t *testing.T) {
	p := onlyProblem(t, "a\n1\n2\n3\n", Options{Format: FormatCSV, MaxRows: 2})
	assert.Equal(t, Problem{Row: 4, Message: "more than 2 data rows (the limit); split the file"}, p)

	sum, err := Validate(strings.NewReader("a\n1\n2\n"), Options{Format: FormatCSV, MaxRows: 2})
	require.NoError(t, err)
	assert.Equal(t, 2, sum.Rows)
}

func TestCSVMaxProblems(t *testing.T) {
	input := "a,b\n1\n2\n3\n4\n5\n"
	ve := problems(t, input, Options{Format: FormatCSV, MaxProblems: 2})
	assert.Len(t, ve.Problems, 2)
	assert.True(t, ve.Truncated)
	assert.Equal(t, "row 2: expected 2 columns, found 1; row 3: expected 2 columns, found 1; more problems not shown", ve.Error())

	ve = problems(t, input, csvOpt)
	assert.Len(t, ve.Problems, 5)
	assert.False(t, ve.Truncated)
}

func TestValidationErrorFormat(t *testing.T) {
	ve := &ValidationError{Problems: []Problem{
		{Row: 7, Message: "expected 5 columns, found 4"},
		{Row: 9, Column: "amount", Message: "not a number"},
		{Message: "the file is empty"},
	}}
	assert.Equal(t, `row 7: expected 5 columns, found 4; row 9 column "amount": not a number; the file is empty`, ve.Error())
}

func TestOptionsErrors(t *testing.T) {
	_, err := Validate(strings.NewReader("a\n1\n"), Options{})
	require.Error(t, err)
	_, err = Validate(strings.NewReader("a\n1\n"), Options{Format: "xml"})
	require.ErrorContains(t, err, `unsupported format "xml"`)
	_, err = Validate(strings.NewReader("a\n1\n"), Options{Format: FormatCSV, MaxRows: MaxRowsLimit + 1})
	require.ErrorContains(t, err, "above the limit")
	_, err = Validate(strings.NewReader("a\n1\n"), Options{Format: FormatCSV, Delimiter: '"'})
	require.ErrorContains(t, err, "invalid CSV delimiter")

	sum, err := Validate(strings.NewReader("a\n1\n"), Options{Format: FormatCSV, MaxRows: MaxRowsLimit})
	require.NoError(t, err)
	assert.Equal(t, 1, sum.Rows)
}

type failingReader struct{ data io.Reader }

var errDisk = errors.New("disk on fire")

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.data.Read(p)
	if err == io.EOF {
		return n, errDisk
	}
	return n, err
}

func TestIOErrorIsNotValidationError(t *testing.T) {
	inputs := map[Format]string{FormatCSV: "a,b\n1,2\n", FormatJSON: `[{"a":1},{"a":2}`, FormatXLSX: "PK"}
	for format, in := range inputs {
		_, err := Validate(&failingReader{strings.NewReader(in)}, Options{Format: format})
		require.ErrorIs(t, err, errDisk, format)
		var ve *ValidationError
		assert.False(t, errors.As(err, &ve), format)
	}
}

func TestDetectFormat(t *testing.T) {
	for name, want := range map[string]Format{"a.csv": FormatCSV, "B.CSV": FormatCSV, "x.tsv": FormatCSV, "d/e.json": FormatJSON, "f.xlsx": FormatXLSX} {
		got, ok := DetectFormat(name)
		assert.True(t, ok, name)
		assert.Equal(t, want, got, name)
	}
	_, ok := DetectFormat("report.pdf")
	assert.False(t, ok)
	_, ok = DetectFormat("noext")
	assert.False(t, ok)
}

// Issue finding 8: NUL delimiter. A NUL or any other control character but
// tab is refused as a delimiter — by ParseDelimiter (the tools' argument)
// and by Options — instead of silently becoming a comma.
func TestDelimiterRefusesControlCharacters(t *testing.T) {
	for _, s := range []string{"\x00", "\x01", "\x1b", "\x7f", "\u0085", "\r", "\n", `"`, "ab", "\xff"} {
		_, err := ParseDelimiter(s)
		require.Error(t, err, "%q", s)
		assert.Contains(t, err.Error(), "invalid CSV delimiter", "%q", s)
		for _, r := range err.Error() {
			assert.False(t, r < 0x20 || r == 0x7f, "raw control character in %q", err.Error())
		}
	}
	for _, r := range []rune{0x01, 0x1b, 0x7f, 0x85, '\r', '\n', '"', 0xFFFD, -1} {
		_, err := Validate(strings.NewReader("a\n1\n"), Options{Format: FormatCSV, Delimiter: r})
		require.ErrorContains(t, err, "invalid CSV delimiter", "%U", r)
	}
	for s, want := range map[string]rune{"": 0, ",": ',', ";": ';', "\t": '\t', "|": '|', "§": '§'} {
		got, err := ParseDelimiter(s)
		require.NoError(t, err, "%q", s)
		assert.Equal(t, want, got)
	}
	_, err := ParseDelimiter("\x00")
	assert.Equal(t, `invalid CSV delimiter "\x00": a control character (only tab is allowed)`, err.Error())
}
