package bulkfiletest

import (
	"archive/zip"
	"bytes"
	"io"
	"testing"
)

// The repeated segments make a valid zip that inflates to exactly what
// was asked for.
func TestZipInflatesToTheParts(t *testing.T) {
	data := Zip(
		Part{Name: "a.xml", Head: "<a>", Unit: "<b>xyz</b>", Count: 100_000, Tail: "</a>"},
		Part{Name: "s.bin", Head: "stored", Unit: "12345", Count: 70_000, Store: true},
		Part{Name: "e.xml", Head: "<e/>"},
	)
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"a.xml": "<a>" + string(bytes.Repeat([]byte("<b>xyz</b>"), 100_000)) + "</a>",
		"s.bin": "stored" + string(bytes.Repeat([]byte("12345"), 70_000)),
		"e.xml": "<e/>",
	}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		if string(got) != want[f.Name] {
			t.Errorf("%s: got %d bytes, want %d", f.Name, len(got), len(want[f.Name]))
		}
	}
	if n := len(SmallBomb()); n > 48<<10 {
		t.Errorf("SmallBomb is %d bytes", n)
	}
	t.Logf("SheetBomb %d bytes, SmallBomb %d bytes", len(SheetBomb()), len(SmallBomb()))
}
