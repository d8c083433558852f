//go:build unix

package workspan_test

import (
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Nothing is opened before the checks: a FIFO blocks an open until a
// writer comes, so these calls return only if the file was never opened —
// over HTTP, where no path is read, and on stdio, where the home folder is
// allowed but a FIFO is no regular file.
func TestRefusedPathsAreNeverOpened(t *testing.T) {
	u := newLocalUser(t)
	fifo := filepath.Join(u.home, "Documents", "opps.csv")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))

	overHTTP := newHarnessWith(t, harnessConfig{noAllowedDirs: true})
	e := overHTTP.CallErr("workspan_bulk_load_opportunities_file", map[string]any{"integration_id": integration, "path": fifo})
	assert.Contains(t, e.Message, "reads no file paths")

	onStdio := newHarnessWith(t, harnessConfig{clientRoots: true, noAllowedDirs: true})
	e = onStdio.CallErr("workspan_bulk_load_opportunities_file", map[string]any{"integration_id": integration, "path": fifo})
	assert.Contains(t, e.Message, "not a regular file")
	assert.Contains(t, e.Message, "content_base64")
	assert.Zero(t, overHTTP.sandbox.RequestCount()+onStdio.sandbox.RequestCount())
}
