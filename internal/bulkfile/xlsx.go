package bulkfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/xuri/excelize/v2"
)

var oleMagic = []byte{0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1}

// xlsxXMLInMemory is the largest worksheet or shared-strings part excelize
// keeps in memory; larger parts are unpacked to a temporary file (in the
// parse's private folder) and read from there.
const xlsxXMLInMemory = 4 << 20

// fileReaderAt remembers a failure to read the temporary copy itself, so
// that a disk error is not reported as a malformed workbook.
type fileReaderAt struct {
	f   *os.File
	err error
}

func (r *fileReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.f.ReadAt(p, off)
	if err != nil && err != io.EOF && r.err == nil {
		r.err = err
	}
	return n, err
}

// xlsxInMemoryInput is the largest workbook checked and opened in memory;
// a larger one is spilled to a temporary file (a zip needs random access).
const xlsxInMemoryInput = 4 << 20

// scanXLSX checks the workbook against the workbook limits (guardXLSX) and
// streams the sheet's rows with excelize's row iterator. A workbook larger
// than xlsxInMemoryInput, and every temporary file excelize makes, lives in
// a private folder (see TempDirPrefix) removed on return, on every path.
func scanXLSX(lr *limitReader, s *scanner) (Summary, error) {
	var head bytes.Buffer
	n, err := io.CopyN(&head, lr, xlsxInMemoryInput+1)
	switch {
	case errors.Is(err, errTooLarge):
		s.tooLarge()
		return Summary{}, nil
	case err != nil && err != io.EOF:
		return Summary{}, err
	case n == 0:
		s.fatal(Problem{Message: "the file is empty"})
		return Summary{}, nil
	case bytes.HasPrefix(head.Bytes(), oleMagic):
		s.fatal(Problem{Message: "not an xlsx workbook: the file is password-protected or in the old .xls format; save it as an unprotected .xlsx"})
		return Summary{}, nil
	case !bytes.HasPrefix(head.Bytes(), []byte("PK")):
		s.fatal(Problem{Message: "not an xlsx workbook: the file is not a zip archive (is it a CSV or another format renamed to .xlsx?)"})
		return Summary{}, nil
	}

	var wd *workDir
	defer func() { wd.remove() }()
	newDir := func() error {
		var err error
		if wd == nil {
			wd, err = newWorkDir()
		}
		return err
	}
	var (
		ra   io.ReaderAt = bytes.NewReader(head.Bytes())
		fra  *fileReaderAt
		path string
	)
	if n > xlsxInMemoryInput {
		if err := newDir(); err != nil {
			return Summary{}, err
		}
		tmp, err := os.CreateTemp(wd.path, "workbook-*.xlsx")
		if err != nil {
			return Summary{}, fmt.Errorf("bulkfile: temporary file for the workbook: %w", err)
		}
		defer func() { _ = tmp.Close() }()
		if _, err := head.WriteTo(tmp); err != nil {
			return Summary{}, err
		}
		rest, err := io.Copy(tmp, lr)
		n += rest
		if errors.Is(err, errTooLarge) {
			s.tooLarge()
			return Summary{}, nil
		}
		if err != nil {
			return Summary{}, err
		}
		fra = &fileReaderAt{f: tmp}
		ra, path = fra, tmp.Name()
	}
	unpacks, err := guardXLSX(ra, n, s.opt)
	if err != nil {
		var refused *errXLSXLimit
		switch {
		case fra != nil && fra.err != nil:
			return Summary{}, fmt.Errorf("bulkfile: reading the workbook's temporary copy: %w", fra.err)
		case errors.As(err, &refused):
			s.fatal(Problem{Message: refused.msg})
		default:
			s.fatal(Problem{Message: "not an xlsx workbook: " + errText(err)})
		}
		return Summary{Bytes: n}, nil
	}
	if unpacks {
		if err := newDir(); err != nil {
			return Summary{}, err
		}
	}

	lim := xlsxLimitsFor(s.opt, n)
	opts := excelize.Options{
		UnzipSizeLimit:    lim.total,
		UnzipXMLSizeLimit: min(xlsxXMLInMemory, lim.total),
	}
	if wd != nil {
		opts.TmpDir = wd.path
	} else {
		// Nothing is to be unpacked: a folder that does not exist makes
		// sure nothing is written anywhere else either.
		opts.TmpDir = filepath.Join(os.TempDir(), TempDirPrefix+"none"+stagingSuffix, "none")
	}
	var f *excelize.File
	if path != "" {
		f, err = excelize.OpenFile(path, opts)
	} else {
		f, err = excelize.OpenReader(bytes.NewReader(head.Bytes()), opts)
	}
	if err != nil {
		if f != nil {
			_ = f.Close()
		}
		s.fatal(Problem{Message: "not an xlsx workbook: " + errText(err)})
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
			const shown = 10
			quoted := make([]string, 0, min(len(sheets), shown+1))
			for i, name := range sheets {
				if i == shown {
					quoted = append(quoted, fmt.Sprintf("… (%d in all)", len(sheets)))
					break
				}
				quoted = append(quoted, Excerpt(name))
			}
			s.fatal(Problem{Message: fmt.Sprintf("sheet %s not found; the workbook has sheets %s", Excerpt(s.opt.Sheet), strings.Join(quoted, ", "))})
			return Summary{}, nil
		}
	}

	rows, err := f.Rows(sheet)
	if err != nil {
		s.fatal(Problem{Message: fmt.Sprintf("cannot read sheet %s: %s", Excerpt(sheet), errText(err))})
		return Summary{}, nil
	}
	defer func() { _ = rows.Close() }()

	t := &table{s: s, pad: true}
	rowNum := 0
	for !s.stop && rows.Next() {
		rowNum++
		cells, err := rows.Columns()
		if err != nil {
			s.fatal(Problem{Row: rowNum, Message: "cannot read the row: " + errText(err)})
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
		s.fatal(Problem{Row: rowNum + 1, Message: "cannot read the sheet: " + errText(err)})
	}
	if rowNum == 0 && !s.stop {
		s.fatal(Problem{Message: fmt.Sprintf("sheet %s is empty", Excerpt(sheet))})
	}
	t.finish(s.opt.NoHeader)
	return Summary{Rows: t.rows, Columns: t.header, Bytes: n}, nil
}
