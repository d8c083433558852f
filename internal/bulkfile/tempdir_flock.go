//go:build linux || darwin || freebsd || dragonfly || netbsd

package bulkfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// closeBeforeRemove: with flock, the folder is removed while still locked.
const closeBeforeRemove = false

// lockFile takes an exclusive advisory lock, held until the file is closed
// or the process ends.
func lockFile(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}

// staleDir reports whether no process holds dir's lock; if so it returns
// with the lock held by the caller until release.
func staleDir(dir string) (stale bool, release func()) {
	f, err := os.Open(filepath.Join(dir, lockName))
	if errors.Is(err, fs.ErrNotExist) {
		// Folders get their final name only once locked: without a lock
		// file it is being removed by its owner or was left half-removed.
		return true, func() {}
	}
	if err != nil {
		return false, nil
	}
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
		_ = f.Close()
		return false, nil
	}
	return true, func() { _ = f.Close() }
}
