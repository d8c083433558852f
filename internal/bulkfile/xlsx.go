package bulkfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/xuri/excelize/v2"
)

var oleMagic = []byte{0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1}

// xlsxXMLInMemory is the largest worksheet or shared-strings part excelize
// keeps in memory; larger parts are unpacked to a temporary file and read
// from there.
const xlsxXMLInMemory = 4 << 20

// scanXLSX spills the input to a temporary file (a zip needs random access)
// and streams the sheet's rows with excelize's row iterator.
func scanXLSX(lr *limitReader, s *scanner) (Summary, error) {
	tmp, err := os.CreateTemp("", "bulkfile-*.xlsx")
	if err != nil {
		return Summary{}, fmt.Errorf("bulkfile: temporary file for the workbook: %w", err)
	}
	defer func() {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
	}()
	n, err := io.Copy(tmp, lr)
	if errors.Is(err, errTooLarge) {
		s.tooLarge()
		return Summary{}, nil
	}
	if err != nil {
		return Summary{}, err
	}
	if n == 0 {
		s.fatal(Problem{Message: "the file is empty"})
		return Summary{}, nil
	}
	head := make([]byte, len(oleMagic))
	if m, _ := tmp.ReadAt(head, 0); bytes.Equal(head[:m], oleMagic) {
		s.fatal(Problem{Message: "not an xlsx workbook: the file is password-protected or in the old .xls format; save it as an unprotected .xlsx"})
		return Summary{}, nil
	} else if !bytes.HasPrefix(head[:m], []byte("PK")) {
		s.fatal(Problem{Message: "not an xlsx workbook: the file is not a zip archive (is it a CSV or another format renamed to .xlsx?)"})
		return Summary{}, nil
	}
	if err := tmp.Close(); err != nil {
		return Summary{}, err
	}

	f, err := excelize.OpenFile(tmp.Name(), excelize.Options{
		UnzipSizeLimit:    max(32*s.opt.MaxBytes, 1<<30),
		UnzipXMLSizeLimit: xlsxXMLInMemory,
	})
	if err != nil {
		if f != nil {
			_ = f.Close()
		}
		s.fatal(Problem{Message: "not an xlsx workbook: " + err.Error()})
		return Summary{}, nil
	}
	defer func() { _ = f.Close() }()

	sheets := f.GetSheetList()
	if len(sheets) == 0 {
		s.fatal(Problem{Message: "not an xlsx workbook: it has no worksheets"})
		return Summary{}, nil
	}
	sheet := sheets[0]
	if s.opt.Sheet != "" {
		sheet = ""
		for _, name := range sheets {
			if strings.EqualFold(name, s.opt.Sheet) {
				sheet = name
				break
			}
		}
		if sheet == "" {
			quoted := make([]string, len(sheets))
			for i, name := range sheets {
				quoted[i] = fmt.Sprintf("%q", name)
			}
			s.fatal(Problem{Message: fmt.Sprintf("sheet %q not found; the workbook has sheets %s", s.opt.Sheet, strings.Join(quoted, ", "))})
			return Summary{}, nil
		}
	}

	rows, err := f.Rows(sheet)
	if err != nil {
		s.fatal(Problem{Message: fmt.Sprintf("cannot read sheet %q: %v", sheet, err)})
		return Summary{}, nil
	}
	defer func() { _ = rows.Close() }()

	t := &table{s: s, pad: true}
	rowNum := 0
	for !s.stop && rows.Next() {
		rowNum++
		cells, err := rows.Columns()
		if err != nil {
			s.fatal(Problem{Row: rowNum, Message: fmt.Sprintf("cannot read the row: %v", err)})
			break
		}
		if rowNum == 1 {
			if !s.opt.NoHeader {
				if !t.setHeader(cells, 0) {
					break
				}
				continue
			}
			for len(cells) > 0 && cells[len(cells)-1] == "" {
				cells = cells[:len(cells)-1]
			}
			if len(cells) == 0 {
				s.fatal(Problem{Row: 1, Message: "the first row is empty"})
				break
			}
			t.setNames(generatedNames(len(cells)))
			if s.ch != nil {
				s.ch.header = nil
			}
		}
		if err := t.row(rowNum, cells, ""); err != nil {
			return Summary{Rows: t.rows, Columns: t.header}, err
		}
	}
	if err := rows.Error(); err != nil && !s.stop {
		s.fatal(Problem{Row: rowNum + 1, Message: fmt.Sprintf("cannot read the sheet: %v", err)})
	}
	if rowNum == 0 && !s.stop {
		s.fatal(Problem{Message: fmt.Sprintf("sheet %q is empty", sheet)})
	}
	t.finish(s.opt.NoHeader)
	return Summary{Rows: t.rows, Columns: t.header, Bytes: n}, nil
}
