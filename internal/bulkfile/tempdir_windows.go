//go:build windows

package bulkfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// closeBeforeRemove: an open file cannot be deleted on Windows, so the lock
// file is closed first.
const closeBeforeRemove = true

// lockFile: on Windows a file held open (Go opens without FILE_SHARE_DELETE)
// cannot be deleted; holding it open is the lock.
func lockFile(*os.File) error { return nil }

// staleDir reports whether dir's lock file can be deleted, i.e. no process
// holds it open.
func staleDir(dir string) (stale bool, release func()) {
	err := os.Remove(filepath.Join(dir, lockName))
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return true, func() {}
	}
	return false, nil
}
