package bulkfile

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
)

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

func scanCSV(lr *limitReader, s *scanner) (Summary, error) {
	br := bufio.NewReaderSize(lr, 64<<10)
	if b, _ := br.Peek(len(utf8BOM)); bytes.Equal(b, utf8BOM) {
		_, _ = br.Discard(len(utf8BOM))
	}
	first, err := br.Peek(1)
	if len(first) == 0 {
		switch {
		case errors.Is(err, errTooLarge):
			s.tooLarge()
		case err == io.EOF:
			s.fatal(Problem{Message: "the file is empty"})
		case err != nil:
			return Summary{}, err
		}
		return Summary{}, nil
	}
	if !s.opt.NoHeader && (first[0] == '\n' || first[0] == '\r') {
		s.fatal(Problem{Row: 1, Message: "the header row is missing: the first line is empty"})
		return Summary{}, nil
	}

	cr := csv.NewReader(br)
	cr.Comma = s.opt.Delimiter
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	t := &table{s: s}
	rec := 0
	for !s.stop {
		fields, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, errTooLarge) {
				s.tooLarge()
				break
			}
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return Summary{Rows: t.rows, Columns: t.header}, err
			}
			rec++
			msg := fmt.Sprintf("line %d, column %d: %v", pe.Line, pe.Column, pe.Err)
			if errors.Is(pe.Err, csv.ErrBareQuote) {
				msg += ` (put the field in quotes and double the quotes inside it, e.g. "say ""hi""")`
			}
			s.add(Problem{Row: rec, Message: msg})
			if t.header == nil {
				s.stop = true // without the first row there are no columns to check against
			}
			continue
		}
		rec++
		where := ""
		if line, _ := cr.FieldPos(0); line != rec {
			where = fmt.Sprintf(" (line %d)", line)
		}
		if rec == 1 {
			if s.opt.NoHeader {
				t.setNames(generatedNames(len(fields)))
				if s.ch != nil {
					s.ch.header = nil
				}
			} else {
				if !t.setHeader(fields, s.opt.Delimiter) {
					break
				}
				continue
			}
		}
		if err := t.row(rec, fields, where); err != nil {
			return Summary{Rows: t.rows, Columns: t.header}, err
		}
	}
	t.finish(s.opt.NoHeader)
	return Summary{Rows: t.rows, Columns: t.header}, nil
}
