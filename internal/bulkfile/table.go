package bulkfile

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// table holds the checks shared by the row-oriented formats (csv, xlsx).
type table struct {
	s      *scanner
	header []string
	width  int
	rows   int // accepted data rows
	// pad (xlsx) fills short rows with empty cells and only reports rows
	// with values beyond the last column; csv rows must match exactly.
	pad     bool
	pending []emptyRun // fully empty rows not yet known to be non-trailing
	// pendingRows counts the rows in pending; runs past the row limit are
	// not remembered (replaying them would stop at the limit first), so
	// alternating empty rows of different widths take bounded memory.
	pendingRows int
	blank       []string
}

// emptyRun is a run of consecutive fully empty rows of the same width.
type emptyRun struct{ row, n, width int }

// columnLetter returns the spreadsheet letter of the 0-based column i.
func columnLetter(i int) string {
	var b []byte
	for n := i + 1; n > 0; n = (n - 1) / 26 {
		b = append(b, byte('A'+(n-1)%26))
	}
	for l, r := 0, len(b)-1; l < r; l, r = l+1, r-1 {
		b[l], b[r] = b[r], b[l]
	}
	return string(b)
}

func generatedNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = "column_" + strconv.Itoa(i+1)
	}
	return names
}

func allEmpty(fields []string) bool {
	for _, f := range fields {
		if f != "" {
			return false
		}
	}
	return true
}

// setNames fixes the columns without checking them (no header row).
func (t *table) setNames(names []string) {
	t.header, t.width = names, len(names)
}

// setHeader checks the header row (row 1) and fixes the columns. It
// returns false when checking cannot go on.
func (t *table) setHeader(fields []string, delim rune) bool {
	s := t.s
	names := append([]string(nil), fields...)
	if t.pad {
		for len(names) > 0 && names[len(names)-1] == "" {
			names = names[:len(names)-1]
		}
	}
	blank := true
	for _, n := range names {
		if strings.TrimSpace(n) != "" {
			blank = false
			break
		}
	}
	if blank {
		s.fatal(Problem{Row: 1, Message: "the header row is empty: the first row must name the columns"})
		return false
	}
	if len(names) == 1 && delim != 0 {
		if d, ok := likelyDelimiter(names[0], delim); ok {
			s.add(Problem{Row: 1, Message: fmt.Sprintf("the header has one column %s: is the delimiter %s?", Excerpt(names[0]), delimiterName(d))})
		}
	}
	seen := make(map[string]int, len(names))
	for i, n := range names {
		if !utf8.ValidString(n) {
			s.add(Problem{Row: 1, Column: columnLetter(i), Message: "invalid UTF-8 in the column name"})
			continue
		}
		key := strings.ToLower(strings.TrimSpace(n))
		if key == "" {
			s.add(Problem{Row: 1, Column: columnLetter(i), Message: "empty column name"})
			continue
		}
		if j, dup := seen[key]; dup {
			s.add(Problem{Row: 1, Column: n, Message: fmt.Sprintf("duplicate column name (column %s is also %s)", columnLetter(j), Excerpt(names[j]))})
			continue
		}
		seen[key] = i
	}
	t.setNames(names)
	if s.ch != nil {
		s.ch.header = names
	}
	return true
}

// likelyDelimiter returns the most frequent of the usual delimiters found in
// a lone header cell, other than the configured one.
func likelyDelimiter(name string, delim rune) (rune, bool) {
	best, bestN := rune(0), 0
	for _, d := range []rune{',', ';', '\t', '|'} {
		if d == delim {
			continue
		}
		if n := strings.Count(name, string(d)); n > bestN {
			best, bestN = d, n
		}
	}
	return best, bestN > 0
}

func delimiterName(d rune) string {
	if d == '\t' {
		return `'\t' (tab)`
	}
	return "'" + string(d) + "'"
}

func (t *table) colName(i int) string {
	if i < len(t.header) && strings.TrimSpace(t.header[i]) != "" {
		return t.header[i]
	}
	return columnLetter(i)
}

// row takes data row number row. where is extra location text for
// messages (e.g. the line number).
func (t *table) row(row int, fields []string, where string) error {
	if allEmpty(fields) {
		if n := len(t.pending); n > 0 {
			last := &t.pending[n-1]
			if last.row+last.n == row && last.width == len(fields) {
				last.n++
				t.pendingRows++
				return nil
			}
		}
		if t.pendingRows <= t.s.opt.MaxRows-t.rows {
			t.pending = append(t.pending, emptyRun{row: row, n: 1, width: len(fields)})
			t.pendingRows++
		}
		return nil
	}
	for _, run := range t.pending {
		for k := 0; k < run.n && !t.s.stop; k++ {
			if err := t.dataRow(run.row+k, t.blankFields(run.width), ""); err != nil {
				return err
			}
		}
	}
	t.pending, t.pendingRows = t.pending[:0], 0
	if t.s.stop {
		return nil
	}
	return t.dataRow(row, fields, where)
}

func (t *table) blankFields(n int) []string {
	if cap(t.blank) < n {
		t.blank = make([]string, n)
	}
	return t.blank[:n]
}

func (t *table) dataRow(row int, fields []string, where string) error {
	s := t.s
	if t.rows >= s.opt.MaxRows {
		s.tooManyRows(row)
		return nil
	}
	t.rows++
	if t.pad {
		for len(fields) > 0 && fields[len(fields)-1] == "" {
			fields = fields[:len(fields)-1]
		}
		if len(fields) > t.width {
			extra := t.width
			for fields[extra] == "" {
				extra++
			}
			s.add(Problem{Row: row, Column: columnLetter(extra), Message: fmt.Sprintf("expected %d columns, found %d: cell %s%d is outside the header", t.width, len(fields), columnLetter(extra), row)})
		} else if len(fields) < t.width {
			fields = append(fields, t.blankFields(t.width-len(fields))...)
		}
	} else if len(fields) != t.width {
		s.add(Problem{Row: row, Message: fmt.Sprintf("expected %d columns, found %d%s", t.width, len(fields), where)})
	}
	for i, f := range fields {
		if !utf8.ValidString(f) {
			s.add(Problem{Row: row, Column: t.colName(i), Message: "invalid UTF-8 text" + where})
		}
	}
	if s.splitting() {
		return s.ch.addRecord(row, fields)
	}
	return nil
}

// finish reports a file without data rows.
func (t *table) finish(noHeader bool) {
	if t.rows > 0 || t.s.stop {
		return
	}
	if noHeader {
		t.s.add(Problem{Message: "the file has no data rows"})
		return
	}
	t.s.add(Problem{Message: "the file has a header row but no data rows"})
}
