package bulkfile

import (
	"archive/zip"
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/xuri/excelize/v2"
)

// A workbook is a zip of XML parts that excelize inflates (into memory, or
// into temporary files for large worksheets) and decodes. Before excelize
// sees a workbook, guardXLSX reads the zip's directory and then inflates
// every part once through a counting reader and a streaming XML scanner,
// refusing the workbook at the first byte past one of these limits, all
// derived from the workbook's own size n and the Options:
//
//   - parts: at most xlsxMaxParts;
//   - uncompressed bytes, per part and in total (declared, and as actually
//     inflated): xlsxMaxRatio × n, at least xlsxMinExpansion, at most
//     xlsxMaxRatio × MaxBytes — legitimate workbooks expand 10-20×;
//   - bytes excelize keeps in memory (every part but the worksheets and the
//     shared strings larger than xlsxXMLInMemory): max(n, xlsxMinInMemory);
//   - cells per sheet: xlsxCellsPerByte × n, at least xlsxMinCells, at most
//     (MaxRows + 1) × 16,384;
//   - columns: 16,384 (XFD) and cells per row the same; rows per sheet:
//     1,048,576 (Excel's own limits; data rows are limited to MaxRows
//     while reading, as for csv);
//   - shared strings: n / 2 items, at least xlsxMinShared, and no more
//     than the cell limit;
//   - text: one cell or shared string xlsxMaxCellBytes; one row, its
//     shared strings resolved, xlsxMaxRowBytes; one sheet
//     xlsxTextPerByte × n, at least xlsxMinText; in worksheets and the
//     shared strings, one text node xlsxMaxCellBytes and one tag
//     xlsxMaxTagBytes (other parts are held in memory whole anyway);
//   - XML elements outside sheet rows (decoded whole by excelize):
//     n / 4, at least xlsxMinElements; number formats (applied to every
//     cell) xlsxMaxNumFmts of xlsxMaxNumFmtBytes; when one is longer than
//     xlsxPlainNumFmtBytes, every styled cell counts as that much more text.
//
// Cells, rows and text are counted in every part, whatever its name: the
// workbook's relationships may make any part the sheet. Refusals are
// content problems naming the limit, so a bomb costs a bounded amount of
// memory, disk and time before excelize unpacks anything.
const (
	xlsxMaxParts       = 10_000
	xlsxMaxRatio       = 100
	xlsxMinExpansion   = 32 << 20
	xlsxMinInMemory    = 64 << 20
	xlsxMaxColumns     = excelize.MaxColumns
	xlsxMaxSheetRows   = excelize.TotalRows
	xlsxCellsPerByte   = 4
	xlsxMinCells       = 1 << 20
	xlsxMinShared      = 64 << 10
	xlsxMaxCellBytes   = 1 << 20
	xlsxMaxRowBytes    = 16 << 20
	xlsxTextPerByte    = 16
	xlsxMinText        = 32 << 20
	xlsxMinElements    = 256 << 10
	xlsxMaxTagBytes    = 64 << 10
	xlsxMaxNumFmts     = 1024
	xlsxMaxNumFmtBytes = 1024
	// xlsxPlainNumFmtBytes: while the longest number format is no longer,
	// formatting is not counted as text (ordinary formats are short).
	xlsxPlainNumFmtBytes = 64
)

// xlsxLimits are the limits for one workbook.
type xlsxLimits struct {
	n         int64 // workbook bytes
	total     int64 // uncompressed bytes of all parts (and of any one)
	inMemory  int64 // uncompressed bytes of the parts excelize keeps in memory
	cells     int64 // cells per sheet
	shared    int64 // shared string items
	sheetText int64 // resolved text per sheet
	elements  int64 // XML elements outside sheet rows
}

func mulSat(a, b int64) int64 {
	if a > 0 && b > math.MaxInt64/a {
		return math.MaxInt64
	}
	return a * b
}

func xlsxLimitsFor(opt Options, n int64) xlsxLimits {
	l := xlsxLimits{n: n}
	l.total = min(max(mulSat(xlsxMaxRatio, n), xlsxMinExpansion), mulSat(xlsxMaxRatio, opt.MaxBytes))
	l.inMemory = min(l.total, max(n, xlsxMinInMemory))
	l.cells = min(max(mulSat(xlsxCellsPerByte, n), xlsxMinCells), mulSat(int64(opt.MaxRows)+1, xlsxMaxColumns))
	l.shared = min(max(n/2, xlsxMinShared), l.cells)
	l.sheetText = min(max(mulSat(xlsxTextPerByte, n), xlsxMinText), l.total)
	l.elements = max(n/4, xlsxMinElements)
	return l
}

// errXLSXLimit is a workbook refused by a limit; its text is the problem.
type errXLSXLimit struct{ msg string }

func (e *errXLSXLimit) Error() string { return e.msg }

func (l *xlsxLimits) refuse(format string, args ...any) error {
	return &errXLSXLimit{msg: "workbook refused: " + fmt.Sprintf(format, args...)}
}

// forSize says which limit a workbook of n bytes gets.
func (l *xlsxLimits) forSize() string {
	return fmt.Sprintf("the limit for a workbook of %d bytes", l.n)
}

// partKind classifies a part the way excelize does when it unpacks it.
type partKind int

const (
	partOther partKind = iota
	partSheet
	partShared
	partStyles
)

func kindOf(name string) partKind {
	lower := strings.ToLower(strings.ReplaceAll(name, "\\", "/"))
	switch {
	case lower == "xl/sharedstrings.xml":
		return partShared
	case lower == "xl/styles.xml":
		return partStyles
	case strings.HasPrefix(lower, "xl/worksheets/sheet"):
		return partSheet
	}
	return partOther
}

// xlsxGuard checks one workbook; see the limits above.
type xlsxGuard struct {
	lim      xlsxLimits
	inflated int64    // bytes inflated so far, all parts
	elements int64    // elements outside rows, all parts
	numFmts  int      // number formats, all parts
	sizes    []uint32 // resolved size of each shared string, by index
	maxFmt   int      // the longest number format code of the styles
}

// guardXLSX checks the workbook in ra (n bytes). A refusal is an
// *errXLSXLimit; a zip that cannot be read is another error. unpacks
// reports whether excelize will unpack parts to temporary files (a
// worksheet or the shared strings over xlsxXMLInMemory).
func guardXLSX(ra io.ReaderAt, n int64, opt Options) (unpacks bool, err error) {
	zr, err := zip.NewReader(ra, n)
	if err != nil {
		return false, err
	}
	g := &xlsxGuard{lim: xlsxLimitsFor(opt, n)}
	l := &g.lim
	if len(zr.File) > xlsxMaxParts {
		return false, l.refuse("it has %d parts, more than the limit of %d", len(zr.File), xlsxMaxParts)
	}
	// The directory first: a bomb that says what it is costs nothing.
	var declared, inMemory uint64
	for _, f := range zr.File {
		size := f.UncompressedSize64
		if size > uint64(l.total) {
			return false, l.refuse("part %s would expand to %d bytes, more than %d (%s: %d× its size, at least %d)",
				Excerpt(f.Name), size, l.total, l.forSize(), xlsxMaxRatio, xlsxMinExpansion)
		}
		declared += size
		if declared > uint64(l.total) {
			return false, l.refuse("it would expand to more than %d bytes (%s: %d× its size, at least %d)",
				l.total, l.forSize(), xlsxMaxRatio, xlsxMinExpansion)
		}
		if k := kindOf(f.Name); k == partOther || k == partStyles || size <= xlsxXMLInMemory {
			inMemory += size
			if inMemory > uint64(l.inMemory) {
				return false, l.refuse("its parts other than large worksheets would take more than %d bytes of memory (%s)", l.inMemory, l.forSize())
			}
		} else {
			unpacks = true
		}
	}
	// Then every part, inflated through the counters; shared strings and
	// styles first, so that a cell referring to a shared string or styled
	// with a long number format is counted at what it becomes.
	for _, first := range []bool{true, false} {
		for _, f := range zr.File {
			if k := kindOf(f.Name); (k == partShared || k == partStyles) != first {
				continue
			}
			if err := g.scanPart(f); err != nil {
				return false, err
			}
		}
	}
	return unpacks, nil
}

// scanPart inflates one part through a counting reader and the XML scanner.
func (g *xlsxGuard) scanPart(f *zip.File) error {
	rc, err := f.Open()
	if err != nil {
		return err
	}
	defer func() { _ = rc.Close() }()
	cr := &countingReader{r: rc, g: g, part: f.Name}
	kind := kindOf(f.Name)
	x := &xmlScan{g: g, part: f.Name, shared: kind == partShared, styles: kind == partStyles, br: bufio.NewReaderSize(cr, 64<<10),
		textLimit: xlsxMaxCellBytes, tagLimit: xlsxMaxTagBytes}
	if kind == partOther || kind == partStyles {
		// Other parts (media, embeddings, but also the XML excelize
		// decodes whole) stay in memory, bounded by the in-memory limit;
		// their text and tags are not bounded further, so that binary
		// content is not mistaken for a huge XML token. Cells and rows
		// are bounded in every part: a part of any name can be made the
		// sheet.
		x.textLimit, x.tagLimit = g.lim.inMemory, g.lim.inMemory
	}
	return x.run()
}

// countingReader counts the bytes actually inflated (a zip's declared sizes
// are not trusted) and fails past the per-part and total limits.
type countingReader struct {
	r    io.Reader
	g    *xlsxGuard
	part string
	n    int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	l := &c.g.lim
	if rem := l.total - c.g.inflated + 1; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.g.inflated += int64(n)
	if c.g.inflated > l.total {
		return n, l.refuse("part %s expands past the limit of %d bytes for the whole workbook (%s: %d× its size, at least %d)",
			Excerpt(c.part), l.total, l.forSize(), xlsxMaxRatio, xlsxMinExpansion)
	}
	return n, err
}

// xmlScan is a streaming, allocation-free scan of one part's XML: it
// counts what excelize would decode (over-approximating where the XML is
// malformed) without building anything.
type xmlScan struct {
	g      *xlsxGuard
	part   string
	shared bool // the shared strings part: record each item's size
	styles bool // the styles part: record the longest number format
	br     *bufio.Reader
	tag    []byte

	textLimit int64 // one text node outside cells and shared strings
	tagLimit  int64 // one tag, comment or declaration

	rows      int64
	cells     int64
	sheetText int64

	inRow    bool
	rowCells int
	col      int
	rowBytes int64

	inCell    bool
	cellBytes int64
	sharedRef bool // t="s": the value is a shared string index
	styled    bool // s is not 0: excelize formats the value
	inV       bool
	v         [24]byte
	vLen      int

	inSI    bool
	siCount int64
	siBytes int64
}

func (x *xmlScan) refuse(format string, args ...any) error {
	return x.g.lim.refuse("part %s: %s", Excerpt(x.part), fmt.Sprintf(format, args...))
}

func (x *xmlScan) run() error {
	for {
		err := x.text()
		if err == nil {
			err = x.markup()
		}
		if err == io.EOF { // the end, or truncated markup, where excelize's decoder stops too
			if x.inSI {
				x.endSI()
			}
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// text consumes character data up to and including the next '<'.
func (x *xmlScan) text() error {
	run := int64(0)
	for {
		chunk, err := x.br.ReadSlice('<')
		body := chunk
		if err == nil {
			body = chunk[:len(chunk)-1]
		}
		run += int64(len(body))
		if run > x.textLimit {
			return x.refuse("a text of more than %d bytes (the limit)", x.textLimit)
		}
		if err := x.addText(body); err != nil {
			return err
		}
		if err == nil {
			return nil
		}
		if err != bufio.ErrBufferFull {
			return err
		}
	}
}

func (x *xmlScan) addText(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	if x.inCell {
		x.cellBytes += int64(len(b))
		if x.cellBytes > xlsxMaxCellBytes {
			return x.refuse("a cell of more than %d bytes (the limit)", xlsxMaxCellBytes)
		}
		if x.inV && x.sharedRef {
			for _, c := range b {
				if x.vLen < len(x.v) {
					x.v[x.vLen] = c
				}
				x.vLen++
			}
		}
	}
	if x.inSI {
		x.siBytes += int64(len(b))
		if x.siBytes > xlsxMaxCellBytes {
			return x.refuse("a shared string of more than %d bytes (the limit)", xlsxMaxCellBytes)
		}
	}
	return nil
}

// readTag reads up to and including the '>' that ends a tag, outside
// quotes, into x.tag (without the '>').
func (x *xmlScan) readTag(quoted bool) error {
	x.tag = x.tag[:0]
	var quote byte
	for {
		chunk, err := x.br.ReadSlice('>')
		if int64(len(x.tag)+len(chunk)) > x.tagLimit {
			return x.refuse("an XML tag of more than %d bytes (the limit)", x.tagLimit)
		}
		x.tag = append(x.tag, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return err
		}
		if quoted {
			for _, c := range chunk {
				switch {
				case quote == 0 && (c == '"' || c == '\''):
					quote = c
				case c == quote:
					quote = 0
				}
			}
			if quote != 0 {
				continue // a '>' inside an attribute value
			}
		}
		x.tag = x.tag[:len(x.tag)-1]
		return nil
	}
}

// readUntil reads up to and including end, counting at most limit bytes.
func (x *xmlScan) readUntil(end string, limit int64, what string) error {
	x.tag = x.tag[:0]
	for {
		chunk, err := x.br.ReadSlice(end[len(end)-1])
		if int64(len(x.tag)+len(chunk)) > limit {
			return x.refuse("%s of more than %d bytes (the limit)", what, limit)
		}
		x.tag = append(x.tag, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return err
		}
		if bytes.HasSuffix(x.tag, []byte(end)) {
			return nil
		}
	}
}

// markup handles what follows a '<'.
func (x *xmlScan) markup() error {
	b, err := x.br.ReadByte()
	if err != nil {
		return err
	}
	switch b {
	case '/':
		if err := x.readTag(false); err != nil {
			return err
		}
		return x.end(localName(x.tag))
	case '?':
		return x.readUntil("?>", x.tagLimit, "an XML declaration")
	case '!':
		head, _ := x.br.Peek(7)
		switch {
		case bytes.HasPrefix(head, []byte("--")):
			return x.readUntil("-->", x.tagLimit, "an XML comment")
		case bytes.HasPrefix(head, []byte("[CDATA[")):
			if err := x.readUntil("]]>", x.textLimit, "a CDATA section"); err != nil {
				return err
			}
			return x.addText(x.tag)
		}
		return x.doctype()
	}
	if err := x.br.UnreadByte(); err != nil {
		return err
	}
	if err := x.readTag(true); err != nil {
		return err
	}
	selfClosing := len(x.tag) > 0 && x.tag[len(x.tag)-1] == '/'
	if selfClosing {
		x.tag = x.tag[:len(x.tag)-1]
	}
	name := localName(x.tag)
	if err := x.start(name); err != nil {
		return err
	}
	if selfClosing {
		return x.end(name)
	}
	return nil
}

// doctype skips a <!DOCTYPE …> (or other <!…>) declaration, nested
// brackets included.
func (x *xmlScan) doctype() error {
	depth, size := 1, int64(0)
	var quote byte
	for depth > 0 {
		c, err := x.br.ReadByte()
		if err != nil {
			return err
		}
		if size++; size > x.tagLimit {
			return x.refuse("an XML declaration of more than %d bytes (the limit)", x.tagLimit)
		}
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '<':
			depth++
		case c == '>':
			depth--
		}
	}
	return nil
}

// localName is the element name of a tag's content, without its prefix.
func localName(tag []byte) string {
	end := bytes.IndexAny(tag, " \t\r\n/")
	if end < 0 {
		end = len(tag)
	}
	name := tag[:end]
	if i := bytes.LastIndexByte(name, ':'); i >= 0 {
		name = name[i+1:]
	}
	// The names the scan acts on; others need no string.
	for _, known := range [...]string{"row", "c", "v", "si", "numFmt"} {
		if string(name) == known {
			return known
		}
	}
	return ""
}

// attr returns the value of attribute key in the current tag.
func (x *xmlScan) attr(key string) ([]byte, bool) {
	t := x.tag
	if i := bytes.IndexAny(t, " \t\r\n"); i >= 0 {
		t = t[i:]
	} else {
		return nil, false
	}
	for len(t) > 0 {
		t = bytes.TrimLeft(t, " \t\r\n")
		eq := bytes.IndexByte(t, '=')
		if eq < 0 {
			return nil, false
		}
		name := bytes.TrimRight(t[:eq], " \t\r\n")
		if i := bytes.LastIndexByte(name, ':'); i >= 0 {
			name = name[i+1:]
		}
		t = bytes.TrimLeft(t[eq+1:], " \t\r\n")
		if len(t) == 0 || (t[0] != '"' && t[0] != '\'') {
			return nil, false
		}
		q := t[0]
		end := bytes.IndexByte(t[1:], q)
		if end < 0 {
			return nil, false
		}
		val := t[1 : 1+end]
		if string(name) == key {
			return val, true
		}
		t = t[end+2:]
	}
	return nil, false
}

// columnOf reads the column number of a cell reference such as "AB12".
func columnOf(ref []byte) (int, bool) {
	col, i := 0, 0
	for ; i < len(ref); i++ {
		c := ref[i] | 0x20 // lower case
		if c < 'a' || c > 'z' {
			break
		}
		col = col*26 + int(c-'a'+1)
		if col > xlsxMaxColumns {
			return col, true
		}
	}
	return col, i > 0
}

func (x *xmlScan) start(name string) error {
	l := &x.g.lim
	if !x.inRow && name != "row" {
		if x.g.elements++; x.g.elements > l.elements {
			return l.refuse("more than %d XML elements outside sheet rows (%s: one per 4 bytes, at least %d)", l.elements, l.forSize(), xlsxMinElements)
		}
	}
	switch name {
	case "row":
		if x.inRow {
			if err := x.endRow(); err != nil {
				return err
			}
		}
		if x.rows++; x.rows > xlsxMaxSheetRows {
			return x.refuse("more than %d rows (the limit of a sheet)", xlsxMaxSheetRows)
		}
		x.inRow, x.rowCells, x.col, x.rowBytes = true, 0, 0, 0
	case "c":
		if !x.inRow {
			return nil
		}
		if x.inCell {
			if err := x.endCell(); err != nil {
				return err
			}
		}
		if x.cells++; x.cells > l.cells {
			return x.refuse("more than %d cells (%s: %d per byte, at least %d)", l.cells, l.forSize(), xlsxCellsPerByte, xlsxMinCells)
		}
		if x.rowCells++; x.rowCells > xlsxMaxColumns {
			return x.refuse("a row of more than %d cells (the limit)", xlsxMaxColumns)
		}
		x.col++
		if ref, ok := x.attr("r"); ok {
			if col, ok := columnOf(ref); ok {
				x.col = col
			}
		}
		if x.col > xlsxMaxColumns {
			return x.refuse("a cell beyond column XFD, the limit of %d columns", xlsxMaxColumns)
		}
		t, _ := x.attr("t")
		style, _ := x.attr("s")
		x.inCell, x.cellBytes, x.sharedRef, x.inV, x.vLen = true, 0, string(t) == "s", false, 0
		x.styled = len(style) > 0 && string(style) != "0"
	case "v":
		if x.inCell {
			x.inV = true
		}
	case "si":
		if x.shared {
			if x.inSI {
				x.endSI()
			}
			if x.siCount++; x.siCount > l.shared {
				return x.refuse("more than %d shared strings (%s: one per 2 bytes, at least %d)", l.shared, l.forSize(), xlsxMinShared)
			}
			x.inSI, x.siBytes = true, 0
		}
	case "numFmt":
		if x.g.numFmts++; x.g.numFmts > xlsxMaxNumFmts {
			return x.refuse("more than %d number formats (the limit)", xlsxMaxNumFmts)
		}
		if code, ok := x.attr("formatCode"); ok {
			if len(code) > xlsxMaxNumFmtBytes {
				return x.refuse("a number format of more than %d bytes (the limit)", xlsxMaxNumFmtBytes)
			}
			if x.styles {
				x.g.maxFmt = max(x.g.maxFmt, len(code))
			}
		}
	}
	return nil
}

func (x *xmlScan) end(name string) error {
	switch name {
	case "row":
		if x.inRow {
			return x.endRow()
		}
	case "c":
		if x.inCell {
			return x.endCell()
		}
	case "v":
		x.inV = false
	case "si":
		if x.inSI {
			x.endSI()
		}
	}
	return nil
}

func (x *xmlScan) endRow() error {
	if x.inCell {
		if err := x.endCell(); err != nil {
			return err
		}
	}
	x.inRow = false
	return nil
}

// endCell adds the cell's text (for a shared string, the string's size) to
// its row and sheet.
func (x *xmlScan) endCell() error {
	x.inCell, x.inV = false, false
	size := x.cellBytes
	if x.sharedRef && x.vLen > 0 && x.vLen <= len(x.v) {
		if i, ok := parseIndex(x.v[:x.vLen]); ok && i < len(x.g.sizes) {
			size += int64(x.g.sizes[i])
		}
	}
	if x.styled && x.g.maxFmt > xlsxPlainNumFmtBytes {
		// A long format can make every cell it styles that long.
		size += int64(x.g.maxFmt)
	}
	x.rowBytes += size
	if x.rowBytes > xlsxMaxRowBytes {
		return x.refuse("a row of more than %d bytes of text (the limit)", xlsxMaxRowBytes)
	}
	x.sheetText += size
	if l := &x.g.lim; x.sheetText > l.sheetText {
		return x.refuse("more than %d bytes of text (%s: %d× its size, at least %d)", l.sheetText, l.forSize(), xlsxTextPerByte, xlsxMinText)
	}
	return nil
}

// endSI records the item's size; where two parts claim to be the shared
// strings, each index keeps the larger size.
func (x *xmlScan) endSI() {
	x.inSI = false
	i, size := x.siCount-1, uint32(x.siBytes)
	if i < int64(len(x.g.sizes)) {
		x.g.sizes[i] = max(x.g.sizes[i], size)
		return
	}
	x.g.sizes = append(x.g.sizes, size)
}

// parseIndex reads a shared string index as excelize does (spaces trimmed).
func parseIndex(b []byte) (int, bool) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || len(b) > 10 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
