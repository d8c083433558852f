//go:build unix

package bulkfile

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// Issue finding 1: nothing is opened before the checks: a FIFO would block
// an open until a writer comes, so these return only if none happened.
func TestOpenInsideOpensNothingUnchecked(t *testing.T) {
	root := t.TempDir()
	allowed := filepath.Join(root, "in")
	require.NoError(t, os.MkdirAll(allowed, 0o755))
	outsideFIFO := filepath.Join(root, "fifo")
	insideFIFO := filepath.Join(allowed, "fifo")
	require.NoError(t, syscall.Mkfifo(outsideFIFO, 0o600))
	require.NoError(t, syscall.Mkfifo(insideFIFO, 0o600))

	_, err := OpenInside(outsideFIFO, Dirs(allowed))
	require.ErrorContains(t, err, "outside the allowed directories")
	_, err = OpenInside(insideFIFO, Dirs(allowed))
	require.ErrorContains(t, err, "is not a regular file")
	link := filepath.Join(allowed, "link.csv")
	require.NoError(t, os.Symlink(outsideFIFO, link))
	_, err = OpenInside(link, Dirs(allowed))
	require.ErrorContains(t, err, "outside the allowed directories")
}
