// Package bulkfile parses and validates bulk upload inputs (CSV, JSON and
// XLSX) locally, streaming and in bounded memory, before anything is sent
// upstream, and splits large inputs into self-contained chunks of at most N
// rows each.
//
// Validate reports content problems as a *ValidationError, with the row and
// column a user can find in the file. Split re-reads the input and emits
// chunks while running exactly the same checks, so a caller validates first
// and then splits a fresh reader of the same input.
package bulkfile

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Format is an input file format.
type Format string

// Supported formats.
const (
	FormatCSV  Format = "csv"
	FormatJSON Format = "json"
	FormatXLSX Format = "xlsx"
)

// Limits and defaults.
const (
	DefaultMaxBytes    int64 = 100 << 20
	DefaultMaxRows           = 1_000_000
	MaxRowsLimit             = 5_000_000
	DefaultMaxProblems       = 20
)

// Options controls parsing and validation.
type Options struct {
	// Format of the input; required.
	Format Format
	// Delimiter is the CSV field separator; default ','.
	Delimiter rune
	// NoHeader (csv, xlsx) treats the first row as data; columns are then
	// named column_1..column_N after the width of the first row.
	NoHeader bool
	// Sheet (xlsx) is the sheet to read; default the first sheet.
	Sheet string
	// MaxBytes is the largest accepted input; default 100 MiB.
	MaxBytes int64
	// MaxRows is the largest accepted number of data rows; default
	// 1,000,000, at most 5,000,000.
	MaxRows int
	// MaxProblems is how many problems are collected before stopping;
	// default 20.
	MaxProblems int
}

func (o Options) withDefaults() (Options, error) {
	switch o.Format {
	case FormatCSV, FormatJSON, FormatXLSX:
	case "":
		return o, errors.New("bulkfile: no format given (csv, json or xlsx)")
	default:
		return o, fmt.Errorf("bulkfile: unsupported format %q (want csv, json or xlsx)", string(o.Format))
	}
	if o.Delimiter == 0 {
		o.Delimiter = ','
	}
	if o.Format == FormatCSV {
		if err := checkDelimiter(o.Delimiter); err != nil {
			return o, fmt.Errorf("bulkfile: %w", err)
		}
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.MaxRows <= 0 {
		o.MaxRows = DefaultMaxRows
	}
	if o.MaxRows > MaxRowsLimit {
		return o, fmt.Errorf("bulkfile: MaxRows %d is above the limit of %d", o.MaxRows, MaxRowsLimit)
	}
	if o.MaxProblems <= 0 {
		o.MaxProblems = DefaultMaxProblems
	}
	return o, nil
}

// ParseDelimiter reads a CSV delimiter given as text: empty means the
// default (0, a comma); otherwise exactly one character that is not a quote,
// a line break, U+FFFD or a control character other than tab (a NUL used to
// become a comma silently).
func ParseDelimiter(s string) (rune, error) {
	if s == "" {
		return 0, nil
	}
	r, size := utf8.DecodeRuneInString(s)
	if size != len(s) {
		return 0, fmt.Errorf("invalid CSV delimiter %s: give exactly one character", Excerpt(s))
	}
	if r == utf8.RuneError {
		return 0, errors.New("invalid CSV delimiter: not valid UTF-8")
	}
	if err := checkDelimiter(r); err != nil {
		return 0, err
	}
	return r, nil
}

// checkDelimiter refuses a delimiter encoding/csv cannot use or that is
// invisible in a file: quotes, line breaks, U+FFFD, and control characters
// other than tab (NUL included: Options.Delimiter 0 means the default).
func checkDelimiter(r rune) error {
	switch {
	case r == '"' || r == '\r' || r == '\n':
		return fmt.Errorf("invalid CSV delimiter %s: quotes and line breaks cannot separate columns", Excerpt(string(r)))
	case r != '\t' && unicode.IsControl(r):
		return fmt.Errorf("invalid CSV delimiter %s: a control character (only tab is allowed)", Excerpt(string(r)))
	case r == utf8.RuneError || r < 0 || !utf8.ValidRune(r):
		return fmt.Errorf("invalid CSV delimiter %s", Excerpt(string(r)))
	}
	return nil
}

// DetectFormat guesses the format from a file name's extension.
func DetectFormat(name string) (Format, bool) {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv", ".tsv", ".txt":
		return FormatCSV, true
	case ".json":
		return FormatJSON, true
	case ".xlsx", ".xlsm":
		return FormatXLSX, true
	}
	return "", false
}

// Summary describes a validated input.
type Summary struct {
	// Rows is the number of data rows (header and trailing empty rows
	// excluded).
	Rows int
	// Columns are the column names: the header, column_1..N without a
	// header, or the union of object keys (in first-seen order) for JSON.
	Columns []string
	// Bytes is the number of input bytes read.
	Bytes int64
}

// Problem is one content problem.
type Problem struct {
	// Row is the row as a user sees it in the file: for csv and xlsx the
	// header is row 1 (without a header the first data row is row 1); for
	// JSON it is the array index + 1. Zero when the problem concerns the
	// whole file.
	Row int
	// Column is the column name, or its letter when it has no usable name.
	Column string
	// Message says what is wrong.
	Message string
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Row > 0 {
		fmt.Fprintf(&b, "row %d", p.Row)
	}
	if p.Column != "" {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("column " + Excerpt(p.Column))
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// ValidationError lists content problems found in an input.
type ValidationError struct {
	Problems []Problem
	// Truncated is set when checking stopped after MaxProblems problems.
	Truncated bool
}

func (e *ValidationError) Error() string {
	parts := make([]string, 0, len(e.Problems)+1)
	for _, p := range e.Problems {
		parts = append(parts, p.String())
	}
	if e.Truncated {
		parts = append(parts, "more problems not shown")
	}
	return strings.Join(parts, "; ")
}

// Chunk is one self-contained piece of the input.
type Chunk struct {
	// Index is the 0-based chunk number.
	Index int
	// FirstRow is the file row number (as in Problem.Row) of the chunk's
	// first data row; Rows is how many data rows it holds.
	FirstRow, Rows int
	// Body is CSV (header line unless NoHeader, then the rows; the input's
	// delimiter for csv, ',' for xlsx) or a JSON array of objects.
	Body []byte
	// Format of Body: FormatCSV or FormatJSON.
	Format Format
}

// Validate parses r fully and checks it. Content problems are returned as a
// *ValidationError; other errors are I/O or usage errors.
func Validate(r io.Reader, opt Options) (Summary, error) {
	return run(r, opt, nil)
}

// Split parses r like Validate and calls emit with chunks of at most
// rowsPerChunk data rows, each carrying its own header. Once a problem is
// found no further chunk is emitted and Split returns the same
// *ValidationError Validate would; chunks emitted before that point have
// already been handed out, so validate first. An error from emit stops Split
// and is returned as is. Memory is bounded by one chunk.
func Split(r io.Reader, opt Options, rowsPerChunk int, emit func(Chunk) error) (Summary, error) {
	if rowsPerChunk <= 0 {
		return Summary{}, fmt.Errorf("bulkfile: rowsPerChunk must be positive, got %d", rowsPerChunk)
	}
	if emit == nil {
		return Summary{}, errors.New("bulkfile: nil emit function")
	}
	return run(r, opt, &chunker{perChunk: rowsPerChunk, emit: emit})
}

func run(r io.Reader, opt Options, ch *chunker) (Summary, error) {
	opt, err := opt.withDefaults()
	if err != nil {
		return Summary{}, err
	}
	s := &scanner{opt: opt, ch: ch}
	lr := &limitReader{r: r, max: opt.MaxBytes}
	var sum Summary
	switch opt.Format {
	case FormatCSV:
		if ch != nil {
			ch.format, ch.delim = FormatCSV, opt.Delimiter
		}
		sum, err = scanCSV(lr, s)
	case FormatXLSX:
		if ch != nil {
			ch.format, ch.delim = FormatCSV, ','
		}
		sum, err = scanXLSX(lr, s)
	case FormatJSON:
		if ch != nil {
			ch.format = FormatJSON
		}
		sum, err = scanJSON(lr, s)
	}
	sum.Bytes = min(lr.n, lr.max)
	if err != nil {
		return sum, err
	}
	if len(s.problems) > 0 {
		return sum, &ValidationError{Problems: s.problems, Truncated: s.truncated}
	}
	if ch != nil {
		if err := ch.flush(); err != nil {
			return sum, err
		}
	}
	return sum, nil
}

// scanner collects problems and forwards accepted rows to the chunker.
type scanner struct {
	opt       Options
	ch        *chunker
	problems  []Problem
	truncated bool
	stop      bool
}

func (s *scanner) add(p Problem) {
	if len(s.problems) >= s.opt.MaxProblems {
		s.truncated, s.stop = true, true
		return
	}
	s.problems = append(s.problems, p)
}

// fatal records a problem after which checking cannot go on.
func (s *scanner) fatal(p Problem) {
	s.add(p)
	s.stop = true
}

// splitting reports whether rows should still be written to chunks.
func (s *scanner) splitting() bool { return s.ch != nil && len(s.problems) == 0 }

var errTooLarge = errors.New("input too large")

// limitReader counts bytes and fails with errTooLarge past max.
type limitReader struct {
	r      io.Reader
	n, max int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n > l.max {
		return 0, errTooLarge
	}
	if rem := l.max + 1 - l.n; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	if l.n > l.max {
		return n - int(l.n-l.max), errTooLarge
	}
	return n, err
}

func (s *scanner) tooLarge() {
	s.fatal(Problem{Message: fmt.Sprintf("the file is larger than the limit of %d bytes", s.opt.MaxBytes)})
}

func (s *scanner) tooManyRows(row int) {
	s.fatal(Problem{Row: row, Message: fmt.Sprintf("more than %d data rows (the limit); split the file", s.opt.MaxRows)})
}

// chunker accumulates accepted rows into chunks and hands them to emit.
type chunker struct {
	perChunk int
	emit     func(Chunk) error
	format   Format
	delim    rune
	header   []string // nil when the chunks carry no header line

	buf      *bytes.Buffer
	w        *csv.Writer
	index    int
	rows     int
	firstRow int
	lastSize int
}

func (c *chunker) start(firstRow int) {
	c.buf = bytes.NewBuffer(make([]byte, 0, c.lastSize+c.lastSize/8+512))
	c.firstRow = firstRow
	if c.format == FormatJSON {
		c.buf.WriteByte('[')
		return
	}
	c.w = csv.NewWriter(c.buf)
	c.w.Comma = c.delim
	if c.header != nil {
		_ = c.w.Write(c.header) // writes to a bytes.Buffer cannot fail
	}
}

func (c *chunker) addRecord(row int, fields []string) error {
	if c.rows == 0 {
		c.start(row)
	}
	if len(fields) == 1 && fields[0] == "" {
		// csv.Writer writes a lone empty field as an empty line, which
		// readers skip: the row would be lost (found by FuzzCSV).
		c.w.Flush()
		c.buf.WriteString("\"\"\n")
	} else if err := c.w.Write(fields); err != nil {
		return err
	}
	c.rows++
	if c.rows >= c.perChunk {
		return c.flush()
	}
	return nil
}

func (c *chunker) addObject(row int, obj []byte) error {
	if c.rows == 0 {
		c.start(row)
	} else {
		c.buf.WriteByte(',')
	}
	c.buf.Write(obj)
	c.rows++
	if c.rows >= c.perChunk {
		return c.flush()
	}
	return nil
}

func (c *chunker) flush() error {
	if c.rows == 0 {
		return nil
	}
	if c.format == FormatJSON {
		c.buf.WriteByte(']')
	} else {
		c.w.Flush()
		if err := c.w.Error(); err != nil {
			return err
		}
	}
	chunk := Chunk{Index: c.index, FirstRow: c.firstRow, Rows: c.rows, Body: c.buf.Bytes(), Format: c.format}
	c.lastSize = c.buf.Len()
	c.index++
	c.rows = 0
	c.buf, c.w = nil, nil
	return c.emit(chunk)
}
