package bulkfile

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/bulkfile/bulkfiletest"
)

type zipPart = bulkfiletest.Part

// workbook is bulkfiletest.Workbook: a minimal workbook whose sheet holds
// head, unit×count and tail.
func workbook(_ testing.TB, head, unit, tail string, count int, extra ...zipPart) []byte {
	return bulkfiletest.Workbook(head, unit, tail, count, extra...)
}

const (
	sstHead   = bulkfiletest.SSTHead
	headerRow = bulkfiletest.HeaderRow
)

// sheetBomb is a 200 MB sheet of repeated rows in about 575 KB.
func sheetBomb(testing.TB) []byte { return bulkfiletest.SheetBomb() }

// isolateTemp points os.TempDir() at a fresh folder and returns it.
func isolateTemp(t *testing.T) string {
	dir := t.TempDir()
	t.Setenv("TMPDIR", dir)
	if runtime.GOOS == "windows" {
		t.Setenv("TMP", dir)
	}
	return dir
}

func assertNoTempLeft(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.Empty(t, names, "temporary files left in %s", dir)
}

// validateMeasured validates data and returns the problem and the bytes the
// call allocated and the peak of the live heap during it.
func validateMeasured(t *testing.T, data []byte, opt Options) (Problem, uint64, float64) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	h := startHeapSampler()
	_, err := Validate(bytes.NewReader(data), opt)
	peak := h.finish()
	runtime.ReadMemStats(&after)
	var ve *ValidationError
	require.ErrorAs(t, err, &ve)
	require.Len(t, ve.Problems, 1, "%v", ve)
	return ve.Problems[0], after.TotalAlloc - before.TotalAlloc, peak
}

// Issue finding 2: xlsx bomb. Each workbook is refused while it is
// inflated — at the zip directory when the sizes declare the bomb, else at
// the first byte, cell, row or string past a limit — with a problem naming
// the limit, in bounded memory, leaving no temporary file.
func TestXLSXBombsAreRefusedInBoundedMemory(t *testing.T) {
	const maxAlloc = 256 << 20
	oneMiBString := strings.Repeat("a", 1<<20-16)
	cases := []struct {
		name string
		data func(t testing.TB) []byte
		opt  Options
		want string
	}{
		{"sheet declares 200 MB", sheetBomb, xlsxOpt, `part "xl/worksheets/sheet1.xml" would expand to`},
		// archive/zip reads no more than a part's declared size, and the
		// counting reader no more than the limits.
		{"sizes lie", func(testing.TB) []byte {
			return bulkfiletest.Zip(
				zipPart{Name: "[Content_Types].xml", Head: bulkfiletest.ContentTypes},
				zipPart{Name: "_rels/.rels", Head: bulkfiletest.Rels},
				zipPart{Name: "xl/workbook.xml", Head: bulkfiletest.WorkbookXML},
				zipPart{Name: "xl/_rels/workbook.xml.rels", Head: bulkfiletest.WorkbookRels},
				zipPart{Name: "xl/worksheets/sheet1.xml", Head: bulkfiletest.SheetHead + headerRow, Unit: `<row><c t="inlineStr"><is><t>x</t></is></c></row>`,
					Count: 4_000_000, Tail: bulkfiletest.SheetTail, DeclaredSize: 1000})
		}, xlsxOpt, "not an xlsx workbook"},
		{"shared strings count", func(t testing.TB) []byte {
			return workbook(t, headerRow, "", "", 0, zipPart{Name: "xl/sharedStrings.xml", Head: sstHead, Unit: `<si><t>a</t></si>`, Count: 1_500_000, Tail: `</sst>`})
		}, xlsxOpt, "shared strings (the limit for a workbook of"},
		{"cells", func(t testing.TB) []byte { return workbook(t, headerRow, `<row><c/><c/><c/><c/></row>`, "", 300_000) }, xlsxOpt, "cells (the limit for a workbook of"},
		{"cells in one row", func(t testing.TB) []byte {
			return workbook(t, headerRow+"<row>", `<c t="inlineStr"><is><t>x</t></is></c>`, "</row>", 20_000)
		}, xlsxOpt, "a row of more than 16384 cells"},
		{"column beyond XFD", func(t testing.TB) []byte {
			return workbook(t, headerRow+`<row r="2"><c r="XFE2"><v>1</v></c></row>`, "", "", 0)
		}, xlsxOpt, "beyond column XFD"},
		{"text node", func(t testing.TB) []byte {
			return workbook(t, headerRow+`<row><c t="inlineStr"><is><t>`, "a", `</t></is></c></row>`, 2<<20)
		}, xlsxOpt, "a text of more than 1048576 bytes"},
		{"one shared string in every cell", func(t testing.TB) []byte {
			return workbook(t, headerRow, `<row><c t="s"><v>0</v></c><c t="s"><v>0</v></c><c t="s"><v>0</v></c><c t="s"><v>0</v></c></row>`, "", 200,
				zipPart{Name: "xl/sharedStrings.xml", Head: sstHead + `<si><t>` + oneMiBString + `</t></si>`, Tail: `</sst>`})
		}, xlsxOpt, "bytes of text"},
		{"elements outside rows", func(t testing.TB) []byte {
			return workbook(t, headerRow, "", "", 0, zipPart{Name: "xl/styles.xml", Head: `<styleSheet><cellXfs>`, Unit: `<xf/>`, Count: 1_000_000, Tail: `</cellXfs></styleSheet>`})
		}, xlsxOpt, "XML elements outside sheet rows"},
		{"number format", func(t testing.TB) []byte {
			return workbook(t, headerRow, "", "", 0, zipPart{Name: "xl/styles.xml", Head: `<styleSheet><numFmts><numFmt numFmtId="200" formatCode="`, Unit: "0", Count: 5000, Tail: `"/></numFmts></styleSheet>`})
		}, xlsxOpt, "a number format of more than 1024 bytes"},
		{"number format on every cell", func(t testing.TB) []byte {
			return workbook(t, headerRow, `<row><c s="1"><v>1</v></c><c s="1"><v>2</v></c></row>`, "", 30_000,
				zipPart{Name: "xl/styles.xml", Head: `<styleSheet><numFmts><numFmt numFmtId="200" formatCode="`, Unit: "0", Count: 1000,
					Tail: `"/></numFmts><cellXfs><xf numFmtId="0"/><xf numFmtId="200" applyNumberFormat="1"/></cellXfs></styleSheet>`})
		}, xlsxOpt, "bytes of text"},
		{"parts", func(t testing.TB) []byte {
			extra := make([]zipPart, xlsxMaxParts)
			for i := range extra {
				extra[i] = zipPart{Name: fmt.Sprintf("xl/media/p%d.bin", i)}
			}
			return workbook(t, headerRow, "", "", 0, extra...)
		}, xlsxOpt, "parts, more than the limit of 10000"},
		{"memory", func(t testing.TB) []byte {
			noise := make([]byte, 1<<20) // incompressible: the workbook is over 1 MiB
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range noise {
				noise[i] = byte(rng.Uint32())
			}
			return workbook(t, headerRow, "", "", 0,
				zipPart{Name: "xl/media/noise.bin", Head: string(noise), Store: true},
				zipPart{Name: "xl/media/zeros.bin", Unit: "\x00\x00\x00\x00\x00\x00\x00\x00", Count: 10 << 20})
		}, xlsxOpt, "would take more than 67108864 bytes of memory"},
		{"tags", func(t testing.TB) []byte {
			return workbook(t, headerRow+`<row><c r="A2" s="`, "1", `"/></row>`, 100_000)
		}, xlsxOpt, "an XML tag of more than 65536 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tmp := isolateTemp(t)
			data := c.data(t)
			p, alloc, peak := validateMeasured(t, data, c.opt)
			assert.Contains(t, p.Message, c.want)
			assert.Less(t, alloc, uint64(maxAlloc), "bytes allocated while refusing the workbook")
			t.Logf("%d-byte workbook: %q; allocated %.1f MiB, peak live heap %.1f MiB", len(data), p.Message, float64(alloc)/(1<<20), peak)
			assertNoTempLeft(t, tmp)
		})
	}
}
