package bulkfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Workbooks are parsed in a private folder under os.TempDir() named
// TempDirPrefix + random: the copy of the upload and every temporary file
// excelize makes. The folder is removed when parsing ends, on every path;
// while in use it is locked (an advisory lock on its lock file, which the
// system releases when the process dies), so RemoveStaleTempFiles can tell
// a folder left by a crash or a kill from one in use by another process.
const TempDirPrefix = "cosell-bulkfile-"

const (
	stagingSuffix = ".new"  // a folder not yet locked; never touched by clean-up
	lockName      = ".lock" // the lock file inside a folder
)

// workDir is one parse's private folder.
type workDir struct {
	path string
	lock *os.File
}

// newWorkDir creates and locks a private folder. It is created under a
// staging name and renamed once locked, so a folder with the final name is
// always either locked or stale.
func newWorkDir() (*workDir, error) {
	staging, err := os.MkdirTemp(os.TempDir(), TempDirPrefix+"*"+stagingSuffix)
	if err != nil {
		return nil, fmt.Errorf("bulkfile: temporary folder: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(staging, lockName), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		err = lockFile(lock)
		if err != nil {
			_ = lock.Close()
		}
	}
	if err != nil {
		_ = os.RemoveAll(staging)
		return nil, fmt.Errorf("bulkfile: temporary folder: %w", err)
	}
	final := strings.TrimSuffix(staging, stagingSuffix)
	if err := os.Rename(staging, final); err != nil {
		_ = lock.Close()
		_ = os.RemoveAll(staging)
		return nil, fmt.Errorf("bulkfile: temporary folder: %w", err)
	}
	return &workDir{path: final, lock: lock}, nil
}

// remove deletes the folder and everything in it, then releases the lock.
func (w *workDir) remove() {
	if w == nil {
		return
	}
	if closeBeforeRemove {
		_ = w.lock.Close()
		_ = os.RemoveAll(w.path)
		return
	}
	_ = os.RemoveAll(w.path)
	_ = w.lock.Close()
}

// RemoveStaleTempFiles removes the temporary folders (TempDirPrefix…) under
// os.TempDir() that no live process holds: those left behind when a server
// was killed or crashed while parsing a workbook. Folders in use by other
// processes (other stdio servers, other replicas on the host) are left
// alone. The server calls it once at start-up; it returns how many folders
// it removed. Where the platform offers no lock it can test, it removes
// nothing.
func RemoveStaleTempFiles() (int, error) {
	root := os.TempDir()
	entries, err := os.ReadDir(root)
	if err != nil {
		return 0, fmt.Errorf("bulkfile: clean %s: %w", root, err)
	}
	removed := 0
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() || !strings.HasPrefix(name, TempDirPrefix) || strings.HasSuffix(name, stagingSuffix) {
			continue
		}
		dir := filepath.Join(root, name)
		stale, release := staleDir(dir)
		if !stale {
			continue
		}
		err := os.RemoveAll(dir)
		release()
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	return removed, errors.Join(errs...)
}
