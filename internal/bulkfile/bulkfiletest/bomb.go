// Package bulkfiletest builds workbooks for tests and fuzzing, malicious
// ones included: a part of hundreds of megabytes of repeated XML is
// written as a repeated deflate segment, so building it costs milliseconds
// and a few kilobytes however large it inflates.
package bulkfiletest

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"hash/crc32"
)

// Part is one zip entry: Head, then Unit repeated Count times, then Tail.
type Part struct {
	Name, Head, Unit, Tail string
	Count                  int
	// Store writes the part uncompressed.
	Store bool
	// DeclaredSize, when not zero, is the uncompressed size the zip
	// claims for the part (a lie, when it differs).
	DeclaredSize uint64
}

// Minimal workbook parts: one sheet, Sheet1, at xl/worksheets/sheet1.xml,
// with shared strings at xl/sharedStrings.xml when a part of that name is
// added.
const (
	ContentTypes = `<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>`
	Rels         = `<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>`
	WorkbookXML  = `<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>`
	WorkbookRels = `<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>`
	SheetHead    = `<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>`
	SheetTail    = `</sheetData></worksheet>`
	SSTHead      = `<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">`
	SSTTail      = `</sst>`
	HeaderRow    = `<row r="1"><c r="A1" t="inlineStr"><is><t>name</t></is></c></row>`
)

// Workbook is a minimal workbook whose sheet holds head, unit×count and
// tail inside sheetData, with extra parts after the sheet.
func Workbook(head, unit, tail string, count int, extra ...Part) []byte {
	parts := []Part{
		{Name: "[Content_Types].xml", Head: ContentTypes},
		{Name: "_rels/.rels", Head: Rels},
		{Name: "xl/workbook.xml", Head: WorkbookXML},
		{Name: "xl/_rels/workbook.xml.rels", Head: WorkbookRels},
		{Name: "xl/worksheets/sheet1.xml", Head: SheetHead + head, Unit: unit, Count: count, Tail: tail + SheetTail},
	}
	return Zip(append(parts, extra...)...)
}

// SheetBomb is a workbook of about 200 KB whose sheet inflates to 200 MB of
// rows.
func SheetBomb() []byte {
	return Workbook(HeaderRow, `<row><c t="inlineStr"><is><t>x</t></is></c></row>`, "", 4_000_000)
}

// SmallBomb is a workbook of about 40 KB (under 64 KiB as base64) whose
// sheet inflates to 40 MiB (one text cell), for seeds and base64 arguments.
func SmallBomb() []byte {
	return Workbook(HeaderRow+`<row><c t="inlineStr"><is><t>`, "a", `</t></is></c></row>`, 40<<20)
}

// Zip writes the parts as a zip archive.
func Zip(parts ...Part) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	var fw *flate.Writer // made on first use
	for _, p := range parts {
		body, crc, size := encode(&fw, p)
		fh := &zip.FileHeader{Name: p.Name, Method: zip.Deflate, CRC32: crc, CompressedSize64: uint64(len(body)), UncompressedSize64: size}
		if p.Store {
			fh.Method = zip.Store
		}
		if p.DeclaredSize != 0 {
			fh.UncompressedSize64 = p.DeclaredSize
		}
		w, err := zw.CreateRaw(fh)
		if err != nil {
			panic(err)
		}
		_, _ = w.Write(body)
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// encode returns the part's data, compressed unless stored, its CRC-32 and
// its uncompressed size.
func encode(fwp **flate.Writer, p Part) ([]byte, uint32, uint64) {
	block, blocks, rest := []byte(nil), 0, []byte(p.Tail)
	if p.Count > 0 && p.Unit != "" {
		per := max(1, (1<<20)/len(p.Unit))
		block = bytes.Repeat([]byte(p.Unit), per)
		blocks = p.Count / per
		rest = append(bytes.Repeat([]byte(p.Unit), p.Count%per), rest...)
	}
	crc := crc32.ChecksumIEEE([]byte(p.Head))
	for range blocks {
		crc = crc32.Update(crc, crc32.IEEETable, block)
	}
	crc = crc32.Update(crc, crc32.IEEETable, rest)
	size := uint64(len(p.Head)) + uint64(blocks)*uint64(len(block)) + uint64(len(rest))
	if p.Store {
		var out bytes.Buffer
		out.WriteString(p.Head)
		for range blocks {
			out.Write(block)
		}
		out.Write(rest)
		return out.Bytes(), crc, size
	}
	// Deflate back-references reach 32 KiB back; once a whole block has
	// been written, every further block has the same history, so the
	// segment that encodes the second block encodes any later one.
	var out bytes.Buffer
	if *fwp == nil {
		*fwp, _ = flate.NewWriter(&out, flate.BestCompression)
	}
	fw := *fwp
	fw.Reset(&out)
	_, _ = fw.Write([]byte(p.Head))
	if blocks > 0 {
		_, _ = fw.Write(block)
		_ = fw.Flush()
	}
	if blocks > 1 {
		start := out.Len()
		_, _ = fw.Write(block)
		_ = fw.Flush()
		segment := append([]byte(nil), out.Bytes()[start:]...)
		for range blocks - 2 {
			out.Write(segment)
		}
	}
	_, _ = fw.Write(rest)
	_ = fw.Close()
	return out.Bytes(), crc, size
}
