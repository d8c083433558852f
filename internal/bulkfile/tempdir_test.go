package bulkfile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// childEnv makes the test binary, started by a test, act as a server
// process (see TestChildProcess).
const childEnv = "BULKFILE_TEST_CHILD"

// startChild runs this test binary as a child in the given mode, with
// os.TempDir() at tmp; it returns the child and its stdout.
func startChild(t *testing.T, mode, tmp string, args ...string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, "TMPDIR="+tmp, "BULKFILE_TEST_ARG="+strings.Join(args, "\x1f"))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	t.Cleanup(func() { _ = stdin.Close() })
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, bufio.NewReader(out)
}

// readLine returns the child's next line starting with prefix.
func readLine(t *testing.T, r *bufio.Reader, prefix string) string {
	t.Helper()
	for {
		line, err := r.ReadString('\n')
		require.NoError(t, err, "the child ended before printing %q", prefix)
		if strings.HasPrefix(line, prefix) {
			return strings.TrimSpace(strings.TrimPrefix(line, prefix))
		}
	}
}

// TestChildProcess is the child's side; it does nothing in a normal run.
func TestChildProcess(t *testing.T) {
	mode := os.Getenv(childEnv)
	if mode == "" {
		t.Skip("runs only as a child process")
	}
	arg := os.Getenv("BULKFILE_TEST_ARG")
	switch mode {
	case "parse-and-hang":
		// A server killed mid-parse: the workbook is split and the first
		// chunk's emit waits forever, its temporary files on disk.
		data := bigWorkbook(t)
		_, _ = Split(bytes.NewReader(data), Options{Format: FormatXLSX}, 10, func(Chunk) error {
			fmt.Println("parsing")
			select {}
		})
	case "peak-rss":
		data, err := os.ReadFile(arg)
		require.NoError(t, err)
		before := vmHWM(t)
		_, err = Validate(bytes.NewReader(data), Options{Format: FormatXLSX})
		fmt.Printf("result: %v\n", err)
		fmt.Printf("rss: %s before, %s after\n", before, vmHWM(t))
	}
}

// bigWorkbook has a sheet over xlsxXMLInMemory, which excelize unpacks to a
// temporary file.
func bigWorkbook(t testing.TB) []byte {
	return workbook(t, headerRow, `<row><c t="inlineStr"><is><t>some text in a cell</t></is></c></row>`, "", 100_000)
}

func vmHWM(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			return strings.Join(strings.Fields(strings.TrimPrefix(line, "VmHWM:")), " ")
		}
	}
	return "?"
}

func dirSize(t *testing.T, dir string) (files int, size int64) {
	require.NoError(t, filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			files++
			size += fi.Size()
		}
		return err
	}))
	return files, size
}

// Finding 2 (temp files): a server killed mid-parse leaves its private
// folder; the next start removes it, and leaves alone the folders that
// live processes (other stdio servers, this one) are using.
func TestRemoveStaleTempFilesAfterAKill(t *testing.T) {
	if closeBeforeRemove || runtime.GOOS != "linux" && runtime.GOOS != "darwin" && runtime.GOOS != "freebsd" {
		t.Skip("needs flock")
	}
	tmp := isolateTemp(t)
	killed, out := startChild(t, "parse-and-hang", tmp)
	readLine(t, out, "parsing")
	live, liveOut := startChild(t, "parse-and-hang", tmp)
	readLine(t, liveOut, "parsing")
	mine, err := newWorkDir()
	require.NoError(t, err)
	defer mine.remove()

	entries, err := os.ReadDir(tmp)
	require.NoError(t, err)
	require.Len(t, entries, 3, "one private folder per parse")
	for _, e := range entries {
		assert.True(t, strings.HasPrefix(e.Name(), TempDirPrefix), e.Name())
	}
	files, size := dirSize(t, tmp)
	t.Logf("mid-parse: %d temporary files, %d bytes", files, size)

	removed, err := RemoveStaleTempFiles()
	require.NoError(t, err)
	assert.Zero(t, removed, "every folder is in use")

	require.NoError(t, killed.Process.Kill())
	_ = killed.Wait()
	removed, err = RemoveStaleTempFiles()
	require.NoError(t, err)
	assert.Equal(t, 1, removed, "the killed server's folder")
	entries, err = os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Len(t, entries, 2, "the live child's and this process's folders stay")
	_, err = os.Stat(mine.path)
	require.NoError(t, err)

	require.NoError(t, live.Process.Kill())
	_ = live.Wait()
	mine.remove()
	removed, err = RemoveStaleTempFiles()
	require.NoError(t, err)
	assert.Equal(t, 1, removed)
	assertNoTempLeft(t, tmp)
}

// A folder without a lock file, or with one nobody holds, is stale; a
// staging folder (not yet locked) and other names are never touched.
func TestRemoveStaleTempFilesKinds(t *testing.T) {
	if closeBeforeRemove || runtime.GOOS != "linux" {
		t.Skip("flock semantics checked on linux")
	}
	tmp := isolateTemp(t)
	mk := func(name string, lock bool) string {
		dir := filepath.Join(tmp, name)
		require.NoError(t, os.Mkdir(dir, 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "workbook.xlsx"), []byte("PK"), 0o600))
		if lock {
			require.NoError(t, os.WriteFile(filepath.Join(dir, lockName), nil, 0o600))
		}
		return dir
	}
	mk(TempDirPrefix+"unlocked", true)
	mk(TempDirPrefix+"nolock", false)
	staging := mk(TempDirPrefix+"x"+stagingSuffix, false)
	other := mk("someone-else", false)
	require.NoError(t, os.WriteFile(filepath.Join(tmp, TempDirPrefix+"file"), nil, 0o600))

	removed, err := RemoveStaleTempFiles()
	require.NoError(t, err)
	assert.Equal(t, 2, removed)
	for _, keep := range []string{staging, other, filepath.Join(tmp, TempDirPrefix+"file")} {
		_, err := os.Stat(keep)
		assert.NoError(t, err, keep)
	}
}

// Finding 2 (temp files): every way a parse ends removes its folder —
// success, a content problem, a refused bomb, a read error, an emit error
// and a panic in emit.
func TestXLSXTempFilesRemovedOnEveryPath(t *testing.T) {
	tmp := isolateTemp(t)
	_, err := Validate(bytes.NewReader(makeXLSX(t, xlsxSheet{name: "S", rows: [][]any{{"a", "b"}, {1, 2}}})), xlsxOpt)
	require.NoError(t, err)
	assertNoTempLeft(t, tmp)
	good := bigWorkbook(t) // its sheet is unpacked to a temporary file

	_, err = Validate(bytes.NewReader(makeXLSX(t, xlsxSheet{name: "S", rows: [][]any{{"a", "a"}, {1, 2}}})), xlsxOpt)
	require.Error(t, err)
	assertNoTempLeft(t, tmp)

	_, err = Validate(bytes.NewReader(sheetBomb(t)), xlsxOpt)
	require.Error(t, err)
	assertNoTempLeft(t, tmp)

	_, err = Validate(&failingReader{bytes.NewReader(good[:1000])}, xlsxOpt)
	require.ErrorIs(t, err, errDisk)
	assertNoTempLeft(t, tmp)

	stop := errors.New("stop")
	_, err = Split(bytes.NewReader(good), xlsxOpt, 10, func(Chunk) error { return stop })
	require.ErrorIs(t, err, stop)
	assertNoTempLeft(t, tmp)

	func() {
		defer func() { assert.NotNil(t, recover()) }()
		_, _ = Split(bytes.NewReader(good), xlsxOpt, 10, func(Chunk) error { panic("emit") })
	}()
	assertNoTempLeft(t, tmp)

	// A workbook over xlsxInMemoryInput is spilled to the folder first.
	spilled := workbook(t, headerRow, `<row><c t="inlineStr"><is><t>x</t></is></c></row>`, "", 10,
		zipPart{Name: "xl/media/big.bin", Unit: "0123456789abcdef", Count: 400_000, Store: true})
	require.Greater(t, len(spilled), xlsxInMemoryInput)
	sum, err := Validate(bytes.NewReader(spilled), xlsxOpt)
	require.NoError(t, err)
	assert.Equal(t, 10, sum.Rows)
	assert.Equal(t, int64(len(spilled)), sum.Bytes)
	assertNoTempLeft(t, tmp)
	_, err = Split(bytes.NewReader(spilled), xlsxOpt, 3, func(Chunk) error { return stop })
	require.ErrorIs(t, err, stop)
	assertNoTempLeft(t, tmp)
	_, err = Validate(&failingReader{bytes.NewReader(spilled)}, xlsxOpt)
	require.ErrorIs(t, err, errDisk)
	assertNoTempLeft(t, tmp)
	p := onlyProblem(t, string(spilled), Options{Format: FormatXLSX, MaxBytes: xlsxInMemoryInput + 100})
	assert.Contains(t, p.Message, "larger than the limit")
	assertNoTempLeft(t, tmp)
}

// The peak resident memory of a process refusing the bomb, for the
// record (reported, not asserted).
func TestXLSXBombPeakRSS(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	tmp := isolateTemp(t)
	for name, data := range map[string][]byte{
		"sheet bomb":          sheetBomb(t),
		"shared strings bomb": workbook(t, headerRow, "", "", 0, zipPart{Name: "xl/sharedStrings.xml", Head: sstHead, Unit: `<si><t>a</t></si>`, Count: 1_500_000, Tail: `</sst>`}),
	} {
		path := filepath.Join(t.TempDir(), "bomb.xlsx")
		require.NoError(t, os.WriteFile(path, data, 0o600))
		child, out := startChild(t, "peak-rss", tmp, path)
		result := readLine(t, out, "result:")
		rss := readLine(t, out, "rss:")
		require.NoError(t, child.Wait())
		assert.Contains(t, result, "workbook refused")
		t.Logf("%s (%d bytes): peak RSS %s", name, len(data), rss)
	}
	assertNoTempLeft(t, tmp)
}
