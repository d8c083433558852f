package bulkfile

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/cosell-mcp/cosell-mcp/internal/bulkfile/bulkfiletest"
)

// The fuzz targets run each parser on arbitrary input and check what must
// hold whatever the input: no panic; a content problem is a
// *ValidationError whose messages are inert (no control character, short:
// file content only as an Excerpt); an accepted input splits into chunks
// that hold every row and parse back; nothing is left in the temporary
// folder. Their seeds run as ordinary tests.

// fuzzMaxRows keeps the row limit reachable.
const fuzzMaxRows = 50

// maxProblemRunes bounds one problem's text: fixed words, numbers and at
// most a few Excerpts.
const maxProblemRunes = 1200

func checkInert(t *testing.T, ve *ValidationError, opt Options) {
	t.Helper()
	if len(ve.Problems) == 0 || len(ve.Problems) > DefaultMaxProblems {
		t.Fatalf("%d problems", len(ve.Problems))
	}
	for _, p := range ve.Problems {
		msg := p.String()
		if !utf8.ValidString(msg) {
			t.Fatalf("invalid UTF-8 in %q", msg)
		}
		if n := utf8.RuneCountInString(msg); n > maxProblemRunes {
			t.Fatalf("a problem of %d runes: %.300q…", n, msg)
		}
		for _, r := range msg {
			if unicode.IsControl(r) {
				t.Fatalf("control character %U in %q", r, msg)
			}
		}
	}
}

// checkParser validates data, then splits it, and checks the invariants.
func checkParser(t *testing.T, data []byte, opt Options) {
	t.Helper()
	sum, err := Validate(bytes.NewReader(data), opt)
	var ve *ValidationError
	if err != nil {
		if !errors.As(err, &ve) {
			if _, optErr := opt.withDefaults(); optErr != nil {
				return // the options themselves are refused
			}
			t.Fatalf("not a ValidationError: %v", err)
		}
		checkInert(t, ve, opt)
	}
	chunks, rows := 0, 0
	sum2, err2 := Split(bytes.NewReader(data), opt, 7, func(c Chunk) error {
		if c.Index != chunks || c.Rows <= 0 || c.Rows > 7 {
			t.Fatalf("chunk %d: index %d, %d rows", chunks, c.Index, c.Rows)
		}
		chunks++
		rows += c.Rows
		if ve == nil {
			checkChunk(t, c, opt)
		}
		return nil
	})
	if ve != nil {
		var ve2 *ValidationError
		if !errors.As(err2, &ve2) || ve2.Error() != ve.Error() {
			t.Fatalf("Split: %v, Validate: %v", err2, ve)
		}
		return
	}
	if err2 != nil {
		t.Fatalf("Split failed where Validate passed: %v", err2)
	}
	if sum2.Rows != sum.Rows || rows != sum.Rows || strings.Join(sum2.Columns, "\x00") != strings.Join(sum.Columns, "\x00") {
		t.Fatalf("Split: %+v in %d rows of chunks, Validate: %+v", sum2, rows, sum)
	}
}

// checkChunk parses a chunk body back.
func checkChunk(t *testing.T, c Chunk, opt Options) {
	t.Helper()
	switch c.Format {
	case FormatJSON:
		var objs []map[string]json.RawMessage
		if err := json.Unmarshal(c.Body, &objs); err != nil || len(objs) != c.Rows {
			t.Fatalf("JSON chunk: %v, %d objects for %d rows", err, len(objs), c.Rows)
		}
	case FormatCSV:
		r := csv.NewReader(bytes.NewReader(c.Body))
		if opt.Format == FormatCSV && opt.Delimiter != 0 {
			r.Comma = opt.Delimiter
		}
		recs, err := r.ReadAll()
		header := 1
		if opt.NoHeader {
			header = 0
		}
		if err != nil || len(recs) != c.Rows+header {
			t.Fatalf("CSV chunk: %v, %d records for %d rows (+%d header)", err, len(recs), c.Rows, header)
		}
	default:
		t.Fatalf("chunk format %q", c.Format)
	}
}

func FuzzCSV(f *testing.F) {
	for _, seed := range []string{
		"name,amount\nAcme,10\nBeta,20\n",
		"\xEF\xBB\xBFname;amount\r\nAcme;\"1,5\"\r\n",
		"a,b\n1,2\n,\n3,4\n,,\n\n",
		"a,b\n\"x\ny\",2\n\"bad\"quote,3\n",
		"a,a\n1,2\n",
		"a\n1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\n15\n",
		"PATH=/usr/bin;/bin\x00HOME=/root|x\x00SECRET_TOKEN=hunter2\x00",
		strings.Repeat("é", 300) + ";x\n1\n",
		"a,\u202eb\n1,2\n",
		"\n\n",
		"",
		",\n,,\n,\n,,\n,\n",
		"a\tb\n1\t2\n",
		"a,b\n1,2,3,4\n\xff\xfe,2\n",
	} {
		f.Add([]byte(seed), byte(0), false)
	}
	f.Add([]byte("a;b\n1;2\n"), byte(';'), false)
	f.Add([]byte("a\x00b\n1\x002\n"), byte(0), true)
	f.Add([]byte("a\tb\n1\t2\n"), byte('\t'), true)
	f.Add([]byte("a\x01b\n"), byte(1), false)
	f.Fuzz(func(t *testing.T, data []byte, delim byte, noHeader bool) {
		checkParser(t, data, Options{Format: FormatCSV, Delimiter: rune(delim), NoHeader: noHeader, MaxRows: fuzzMaxRows})
	})
}

func FuzzJSON(f *testing.F) {
	for _, seed := range []string{
		`[{"name":"Acme","amount":10.5,"won":true,"note":null},{"name":"Beta","region":"EMEA"}]`,
		"\xEF\xBB\xBF[{\"a\":1}]",
		`[{"a":1},{"a":{"b":2}},[1,2],"x",3,null]`,
		`[{"a":1,"a":2},{"":1}]`,
		`[{"a":1}] trailing`,
		`{"a":1}`,
		`[`,
		`[]`,
		``,
		`[{"a":"\u0000\ud800\u202e"}]`,
		"[{\"\xff\":1}]",
		`[{"a":1e999999999},{"a":-0.0000000000000000000001}]`,
		strings.Repeat("[", 10000),
		`[` + strings.Repeat(`{"k":1},`, 60) + `{"k":1}]`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkParser(t, data, Options{Format: FormatJSON, MaxRows: fuzzMaxRows})
	})
}

// FuzzXLSX takes either a whole workbook (raw), or the XML of its sheet,
// shared strings and styles separated by "\x00\x00" (so that mutations
// reach the XML instead of breaking the zip's checksums), wrapped in a
// valid workbook.
func FuzzXLSX(f *testing.F) {
	tmp := f.TempDir()
	f.Setenv("TMPDIR", tmp)
	raw := func(data []byte) { f.Add(data, true, false) }
	raw(makeXLSX(f, xlsxSheet{name: "Deals", rows: [][]any{{"name", "amount", "note"}, {"Acme", 10, "a, b"}, {"Beta", 20.5, "x\ny"}, {"Gamma", 30}}}))
	raw(makeXLSX(f, xlsxSheet{name: "S", rows: [][]any{{"a", "a"}, {1, 2, nil, "stray"}, nil, {3}}}))
	raw(makeXLSX(f, xlsxSheet{name: "One", rows: [][]any{{"x"}}}, xlsxSheet{name: "Two", rows: [][]any{{"y"}, {1}}}))
	raw(bulkfiletest.SmallBomb())
	raw(bulkfiletest.Workbook(bulkfiletest.HeaderRow, `<row><c/><c/><c/><c/></row>`, "", 1_000_000))
	raw(bulkfiletest.Workbook(bulkfiletest.HeaderRow, "", "", 0,
		bulkfiletest.Part{Name: "xl/sharedStrings.xml", Head: bulkfiletest.SSTHead, Unit: "<si><t>a</t></si>", Count: 1_000_000, Tail: bulkfiletest.SSTTail}))
	raw(append(append([]byte(nil), oleMagic...), "rest"...))
	raw([]byte("PK\x03\x04garbage"))
	raw([]byte("name,amount\nAcme,1\n"))

	xml := func(sheet, sst, styles string, noHeader bool) {
		f.Add([]byte(sheet+"\x00\x00"+sst+"\x00\x00"+styles), false, noHeader)
	}
	const cells = `<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="inlineStr"><is><t>amount</t></is></c><c r="C1" t="str"><v>date</v></c></row>` +
		`<row r="2"><c r="A2" t="s"><v>1</v></c><c r="B2"><v>10.5</v></c><c r="C2" s="1"><v>45000</v></c></row>` +
		`<row r="4"><c r="A4" t="s"><v>2</v></c><c r="B4" t="b"><v>1</v></c><c r="C4" t="e"><v>#N/A</v></c></row>`
	const sst = `<sst><si><t>name</t></si><si><r><t>Ac</t></r><r><t>me</t></r></si><si><t xml:space="preserve"> x </t><rPh><t>ignored</t></rPh></si></sst>`
	const styles = `<styleSheet><numFmts count="1"><numFmt numFmtId="164" formatCode="yyyy-mm-dd"/></numFmts><cellXfs count="2"><xf numFmtId="0"/><xf numFmtId="164" applyNumberFormat="1"/></cellXfs></styleSheet>`
	xml(bulkfiletest.SheetHead+cells+bulkfiletest.SheetTail, sst, styles, false)
	xml(bulkfiletest.SheetHead+cells+bulkfiletest.SheetTail, sst, styles, true)
	xml(bulkfiletest.SheetHead+`<row><c t="s"><v>99</v></c><c t="s"><v>-1</v></c><c t="s"><v> 0 </v></c></row>`+bulkfiletest.SheetTail, sst, "", false)
	xml(bulkfiletest.SheetHead+`<row r="2"><c r="XFD2"><v>1</v></c></row><row r="1"><c r="A1"><v>x</v></c></row><row r="1048576"><c r="A1048576"><v>1</v></c></row>`+bulkfiletest.SheetTail, "", "", false)
	xml(`<!DOCTYPE x [<!ENTITY a "aaaa">]><x:worksheet xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><x:sheetData><x:row><x:c t="inlineStr"><x:is><x:t>&a;&amp;&#65;</x:t></x:is></x:c></x:row><!-- <row> --><![CDATA[<row><c>]]></x:sheetData></x:worksheet>`, "", "", false)
	xml(bulkfiletest.SheetHead+`<row><c><v>1</v><c><v>2</v></c></c><row><c><f>SUM(A1:A2)</f><v>3</v></c></row></row>`+bulkfiletest.SheetTail, "<sst><si><t>x</t><si><t>y</t></si></si></sst>", `<styleSheet><numFmts><numFmt numFmtId="164" formatCode="0000000000000000000000000000000000000000000000000000000000000000000000"/></numFmts><cellXfs><xf numFmtId="164"/></cellXfs></styleSheet>`, false)
	xml(bulkfiletest.SheetHead+`<row><c t="inlineStr"><is><t>\x00\x01`+"\u202e"+`</t></is></c></row>`+bulkfiletest.SheetTail, "", "", false)
	xml("", "", "", false)

	f.Fuzz(func(t *testing.T, data []byte, raw, noHeader bool) {
		if !raw {
			parts := bytes.SplitN(data, []byte("\x00\x00"), 3)
			for len(parts) < 3 {
				parts = append(parts, nil)
			}
			extra := []bulkfiletest.Part{{Name: "xl/sharedStrings.xml", Head: string(parts[1]), Store: true}}
			if len(parts[2]) > 0 {
				extra = append(extra, bulkfiletest.Part{Name: "xl/styles.xml", Head: string(parts[2]), Store: true})
			}
			data = bulkfiletest.Zip(append([]bulkfiletest.Part{
				{Name: "[Content_Types].xml", Head: bulkfiletest.ContentTypes, Store: true},
				{Name: "_rels/.rels", Head: bulkfiletest.Rels, Store: true},
				{Name: "xl/workbook.xml", Head: bulkfiletest.WorkbookXML, Store: true},
				{Name: "xl/_rels/workbook.xml.rels", Head: bulkfiletest.WorkbookRels, Store: true},
				{Name: "xl/worksheets/sheet1.xml", Head: string(parts[0]), Store: true},
			}, extra...)...)
		}
		// MaxBytes keeps what one input may expand to at 12.8 MB (100×),
		// so that every execution is quick.
		checkParser(t, data, Options{Format: FormatXLSX, NoHeader: noHeader, MaxRows: fuzzMaxRows, MaxBytes: 128 << 10})
		entries, err := os.ReadDir(tmp)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 0 {
			t.Fatalf("temporary files left: %s…", entries[0].Name())
		}
	})
}
