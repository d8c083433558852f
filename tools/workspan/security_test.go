package workspan_test

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/bulkfile"
	"github.com/cosell-mcp/cosell-mcp/internal/bulkfile/bulkfiletest"
	"github.com/cosell-mcp/cosell-mcp/tools"
)

const secret = "SECRET_TOKEN=hunter2-do-not-leak"

// environLike is shaped like /proc/self/environ: NUL-separated variables on
// one "line", a secret far from the start, and delimiter-like characters
// that make the parser quote its one header cell.
func environLike() string {
	return "PATH=/usr/bin;/bin\x00HOME=/root|x\x00" + strings.Repeat("FILLER=xxxxxxxxxxxxxxxx\x00", 50) + secret + "\x00"
}

// assertInert checks that an error message carries no secret, no raw
// control character, and only short excerpts.
func assertInert(t *testing.T, e tools.Error) {
	t.Helper()
	assert.NotContains(t, e.Message, "hunter2")
	assert.NotContains(t, e.Message, "FILLER=xxxxxxxxxxxxxxxx\\x00FILLER=xxxxxxxxxxxxxxxx\\x00FILLER")
	for _, r := range e.Message {
		assert.False(t, unicode.IsControl(r), "raw control character %U in %q", r, e.Message)
	}
	assert.Less(t, utf8.RuneCountInString(e.Message), 4096)
}

// Issue finding 1: client roots over HTTP. A client that declares file:///
// as its root widens nothing: server files outside the configured folders
// (/etc/passwd, /proc/self/environ, a secrets file) are refused without
// being read, and the refusal quotes none of them.
func TestClientRootsOverHTTPWidenNothing(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "secrets.csv")
	require.NoError(t, os.WriteFile(secretFile, []byte(environLike()), 0o600))
	h := newHarnessWith(t, harnessConfig{clientOpts: []client.ClientOption{client.WithRootsHandler(rootsHandler{dir: "/"})}})

	paths := []string{secretFile, "/etc/passwd", "/etc/hostname", "/proc/self/environ", filepath.Join(h.dir, "..", "..", "etc", "passwd")}
	for _, tool := range []string{"workspan_bulk_load_data_file", "workspan_bulk_load_opportunities_file"} {
		for _, p := range paths {
			e := h.CallErr(tool, map[string]any{"integration_id": integration, "path": p, "format": "csv"})
			assert.Equal(t, tools.CodeInvalidArgument, e.Code, p)
			assert.Contains(t, e.Message, "outside the allowed directories", p)
			assert.NotContains(t, e.Message, "root:", p)
			assertInert(t, e)
		}
	}
	assert.Zero(t, h.sandbox.RequestCount())
}

// Issue finding 1, second half: a file the caller may read (stdio, its own
// roots) appears in an error only as a short escaped excerpt of the row in
// question — never the whole row, never raw control characters.
func TestErrorsQuoteOnlyShortExcerpts(t *testing.T) {
	rootDir := t.TempDir()
	h := newHarnessWith(t, harnessConfig{clientRoots: true, clientOpts: []client.ClientOption{client.WithRootsHandler(rootsHandler{dir: rootDir})}})
	long := strings.Repeat("é", 500) + secret
	files := map[string]string{
		"environ.csv":   environLike(),
		"dup.csv":       long + "," + long + "\n1,2\n",
		"header.csv":    "a,\x00" + long + ",a\n1,2,3\n",
		"keys.json":     `[{"` + long + `":{"nested":1}}]`,
		"width.csv":     "a,b\n1,2," + long + "\n",
		"delimiter.csv": strings.Repeat(";x", 100) + secret + "\n1\n",
	}
	for name, content := range files {
		path := filepath.Join(rootDir, name)
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
		e := h.CallErr("workspan_bulk_load_data_file", map[string]any{"integration_id": integration, "path": path})
		assert.Equal(t, tools.CodeInvalidArgument, e.Code, name)
		assert.Contains(t, e.Message, "was not uploaded", name)
		assertInert(t, e)
		t.Logf("%s: %s", name, e.Message)
	}
	// The same through inline data and base64 content.
	e := h.CallErr("workspan_bulk_load_data", map[string]any{"integration_id": integration, "data": environLike()})
	assertInert(t, e)
	e = h.CallErr("workspan_bulk_load_data_file", map[string]any{"integration_id": integration, "filename": "x.csv" + strings.Repeat("\x00", 200),
		"content_base64": base64.StdEncoding.EncodeToString([]byte(environLike()))})
	assertInert(t, e)
	assert.Zero(t, h.sandbox.RequestCount())
}

// Issue finding 8: NUL delimiter. A NUL (or any control character but tab)
// as column_delimiter is refused by name instead of silently becoming a
// comma; tab still works.
func TestColumnDelimiterRefusesControlCharacters(t *testing.T) {
	h := newHarness(t)
	for _, d := range []string{"\x00", "\x01", "\x1f", "\x7f", "\u0085", "\n", "\r", `"`} {
		for _, tool := range []string{"workspan_bulk_load_data", "workspan_bulk_load_opportunities"} {
			e := h.CallErr(tool, map[string]any{"integration_id": integration, "column_delimiter": d, "data": "name,stage\nA,Qualify\n"})
			assert.Equal(t, tools.CodeInvalidArgument, e.Code, "%q", d)
			assert.Equal(t, "column_delimiter", e.Field, "%q", d)
			assert.Contains(t, e.Message, "invalid CSV delimiter", "%q", d)
			assertInert(t, e)
		}
		e := h.CallErr("workspan_bulk_load_data_file", map[string]any{"integration_id": integration, "column_delimiter": d, "filename": "a.csv",
			"content_base64": base64.StdEncoding.EncodeToString([]byte("name,stage\nA,Qualify\n"))})
		assert.Equal(t, "column_delimiter", e.Field, "%q", d)
	}
	assert.Zero(t, h.sandbox.RequestCount(), "refused before any upload")

	var up struct{ Columns []string }
	h.Call("workspan_bulk_load_data", map[string]any{"integration_id": integration, "column_delimiter": "\t", "data": "name\tstage\nA\tQualify\n"}, &up)
	assert.Equal(t, []string{"name", "stage"}, up.Columns)
}

// Issue finding 2: xlsx bomb, through the tool. Workbooks that inflate to
// hundreds of times their size — sent as base64 (the shape of the 416 KB
// request that took the server to 2 GB) or from an allowed folder — are
// refused as invalid_argument naming the limit, in bounded memory, with no
// upstream call and no temporary file left.
func TestXLSXBombRefusedByTheTool(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	h := newHarness(t)
	big := bulkfiletest.SheetBomb() // 200 MB of rows in about 575 KB
	path := filepath.Join(h.dir, "bomb.xlsx")
	require.NoError(t, os.WriteFile(path, big, 0o600))

	for _, args := range []map[string]any{
		{"integration_id": integration, "content_base64": base64.StdEncoding.EncodeToString(big), "filename": "bomb.xlsx"},
		{"integration_id": integration, "content_base64": base64.StdEncoding.EncodeToString(bulkfiletest.SmallBomb()), "filename": "small.xlsx"}, // one 40 MiB cell
		{"integration_id": integration, "path": path},
	} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		e := h.CallErr("workspan_bulk_load_opportunities_file", args)
		runtime.ReadMemStats(&after)
		assert.Equal(t, tools.CodeInvalidArgument, e.Code)
		assert.Contains(t, e.Message, "workbook refused")
		assert.Contains(t, e.Message, "100× its size")
		alloc := after.TotalAlloc - before.TotalAlloc
		assert.Less(t, alloc, uint64(256<<20), "bytes allocated while refusing the bomb")
		t.Logf("allocated %.1f MiB; %s", float64(alloc)/(1<<20), e.Message)
	}
	assert.Zero(t, h.sandbox.RequestCount())
	entries, err := os.ReadDir(tmp)
	require.NoError(t, err)
	for _, e := range entries {
		assert.False(t, strings.HasPrefix(e.Name(), bulkfile.TempDirPrefix), "temporary folder left: %s", e.Name())
	}
}
