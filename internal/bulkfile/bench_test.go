package bulkfile

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
)

// Benchmark fixtures are generated once per process into fixtureDir and
// removed by TestMain.
var (
	fixtureDir  string
	fixtureOnce sync.Once
	fixtureErr  error
	csvFixture  string
	xlsxFixture string
	csvGen      sync.Once
	xlsxGen     sync.Once
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureDir != "" {
		_ = os.RemoveAll(fixtureDir)
	}
	os.Exit(code)
}

func benchDir(b *testing.B) string {
	b.Helper()
	fixtureOnce.Do(func() { fixtureDir, fixtureErr = os.MkdirTemp("", "bulkfile-bench-") })
	if fixtureErr != nil {
		b.Fatal(fixtureErr)
	}
	return fixtureDir
}

const benchCols = 10

func benchHeader() []string {
	return []string{"opportunity_id", "name", "account", "stage", "amount", "currency", "close_date", "owner_email", "region", "notes"}
}

func benchRow(i int) []string {
	return []string{
		fmt.Sprintf("OPP-%07d", i),
		fmt.Sprintf("Deal %d", i),
		fmt.Sprintf("Account %d", i%5000),
		[]string{"Prospect", "Qualified", "Proposal", "Won", "Lost"}[i%5],
		fmt.Sprintf("%d.%02d", i%100000, i%100),
		"USD",
		fmt.Sprintf("2026-%02d-%02d", i%12+1, i%28+1),
		fmt.Sprintf("rep%d@example.com", i%300),
		[]string{"AMER", "EMEA", "APAC"}[i%3],
		"renewal, multi-year",
	}
}

func csvBenchFile(b *testing.B, rows int) string {
	csvGen.Do(func() {
		path := filepath.Join(benchDir(b), "bench.csv")
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		w := bufio.NewWriterSize(f, 1<<20)
		writeCSVLine(w, benchHeader())
		for i := 1; i <= rows; i++ {
			writeCSVLine(w, benchRow(i))
		}
		if err := w.Flush(); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		csvFixture = path
	})
	return csvFixture
}

func writeCSVLine(w *bufio.Writer, fields []string) {
	for i, f := range fields {
		if i > 0 {
			w.WriteByte(',')
		}
		if i == len(fields)-1 {
			w.WriteByte('"')
			w.WriteString(f)
			w.WriteByte('"')
			continue
		}
		w.WriteString(f)
	}
	w.WriteByte('\n')
}

func xlsxBenchFile(b *testing.B, rows int) string {
	xlsxGen.Do(func() {
		path := filepath.Join(benchDir(b), "bench.xlsx")
		f := excelize.NewFile()
		sw, err := f.NewStreamWriter("Sheet1")
		if err != nil {
			b.Fatal(err)
		}
		vals := make([]any, benchCols)
		put := func(r int, fields []string) {
			for i, v := range fields {
				vals[i] = v
			}
			cell, _ := excelize.CoordinatesToCellName(1, r)
			if err := sw.SetRow(cell, vals); err != nil {
				b.Fatal(err)
			}
		}
		put(1, benchHeader())
		for i := 1; i <= rows; i++ {
			put(i+1, benchRow(i))
		}
		if err := sw.Flush(); err != nil {
			b.Fatal(err)
		}
		if err := f.SaveAs(path); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		xlsxFixture = path
	})
	return xlsxFixture
}

// heapSampler records the peak of live-and-unswept heap object bytes.
type heapSampler struct {
	peak atomic.Uint64
	stop chan struct{}
	done chan struct{}
}

func startHeapSampler() *heapSampler {
	runtime.GC()
	h := &heapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() {
		metrics.Read(sample)
		if v := sample[0].Value.Uint64(); v > h.peak.Load() {
			h.peak.Store(v)
		}
	}
	read()
	go func() {
		defer close(h.done)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				read()
				return
			case <-t.C:
				read()
			}
		}
	}()
	return h
}

func (h *heapSampler) finish() float64 {
	close(h.stop)
	<-h.done
	return float64(h.peak.Load()) / (1 << 20)
}

func benchValidateFile(b *testing.B, path string, opt Options, wantRows int) {
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	h := startHeapSampler()
	b.ResetTimer()
	for b.Loop() {
		f, err := os.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		sum, err := Validate(f, opt)
		_ = f.Close()
		if err != nil {
			b.Fatal(err)
		}
		if sum.Rows != wantRows {
			b.Fatalf("rows = %d, want %d", sum.Rows, wantRows)
		}
	}
	b.StopTimer()
	peak := h.finish()
	b.ReportMetric(float64(wantRows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(peak, "peak-heap-MiB")
}

func BenchmarkValidateCSV1M(b *testing.B) {
	const rows = 1_000_000
	path := csvBenchFile(b, rows)
	benchValidateFile(b, path, Options{Format: FormatCSV, MaxBytes: 1 << 30}, rows)
}

func BenchmarkValidateXLSX100k(b *testing.B) {
	const rows = 100_000
	path := xlsxBenchFile(b, rows)
	benchValidateFile(b, path, Options{Format: FormatXLSX}, rows)
}

// BenchmarkGuardXLSX100k is the cost of the workbook limits (guardXLSX)
// alone: one more inflate and scan of every part before excelize opens it.
func BenchmarkGuardXLSX100k(b *testing.B) {
	path := xlsxBenchFile(b, 100_000)
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	opt, err := Options{Format: FormatXLSX}.withDefaults()
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := guardXLSX(f, fi.Size(), opt); err != nil {
			b.Fatal(err)
		}
	}
}
