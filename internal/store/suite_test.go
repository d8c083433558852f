package store_test

import (
	"path/filepath"
	"testing"

	"github.com/cosell-mcp/cosell-mcp/internal/store"
	"github.com/cosell-mcp/cosell-mcp/internal/store/storetest"
)

var _ storetest.StoreAPI = (*store.Store)(nil)

// TestSuite runs the behaviour suite shared with the PostgreSQL store. The
// SQLite store is one process's store, so its concurrency tests share one
// Store between goroutines; failing an append midway is tested by
// TestAppendWithStateIsAtomic through the internal hook.
func TestSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts store.Options) storetest.StoreAPI {
		s, err := store.Open(filepath.Join(t.TempDir(), "state.db"), opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}
