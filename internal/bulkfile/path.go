package bulkfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ResolvePath turns path into an absolute, cleaned path with symlinks
// resolved, and checks that it names a regular file inside one of
// allowedDirs (whose symlinks are resolved too). A relative path is taken
// relative to the working directory.
//
// A path that is not inside an allowed directory as written (after
// cleaning, so "allowed/../x" is outside) is refused before the file system
// is asked anything about it; one that is inside as written is resolved,
// and refused if it resolves (through a symlink) outside. Nothing is
// opened.
func ResolvePath(path string, allowedDirs []string) (string, error) {
	if len(allowedDirs) == 0 {
		return "", errors.New("no directories are allowed for file input; configure -allowed-dirs (or COSELL_ALLOWED_DIRS) with the folders files may be read from")
	}
	if strings.TrimSpace(path) == "" {
		return "", errors.New("empty file path")
	}
	allowed := "allowed directories: " + strings.Join(allowedDirs, ", ")
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("file %q: %w", path, err)
	}
	var written, real []string // the allowed dirs as written and resolved
	for _, d := range allowedDirs {
		if d == "" {
			continue
		}
		dabs, err := filepath.Abs(d)
		if err != nil {
			continue
		}
		written = append(written, dabs)
		if dreal, err := filepath.EvalSymlinks(dabs); err == nil {
			real = append(real, dreal)
		}
	}
	outside := fmt.Errorf("file %q is outside the allowed directories (%s)", path, allowed)
	if !withinAny(append(written, real...), abs) {
		return "", outside
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("file %q does not exist (%s)", path, allowed)
		}
		return "", fmt.Errorf("file %q: %w", path, err)
	}
	if !withinAny(real, resolved) {
		return "", outside
	}
	fi, err := os.Stat(resolved)
	if err != nil {
		return "", fmt.Errorf("file %q: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		if fi.IsDir() {
			return "", fmt.Errorf("%q is a directory, not a file", path)
		}
		return "", fmt.Errorf("%q is not a regular file", path)
	}
	return resolved, nil
}

// OpenInside resolves path like ResolvePath, opens the file, and checks
// that what it opened is still the regular file the path resolves to
// inside the allowed directories (a symlink swapped between the check and
// the open is refused). Read the returned file, not the path again.
func OpenInside(path string, allowedDirs []string) (*os.File, error) {
	resolved, err := ResolvePath(path, allowedDirs)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(resolved)
	if err != nil {
		return nil, fmt.Errorf("file %q: %w", path, err)
	}
	opened, err := f.Stat()
	if err == nil && !opened.Mode().IsRegular() {
		err = fmt.Errorf("%q is not a regular file", path)
	}
	if err == nil {
		var again string
		if again, err = ResolvePath(path, allowedDirs); err == nil {
			var now os.FileInfo
			if now, err = os.Stat(again); err == nil && !os.SameFile(opened, now) {
				err = fmt.Errorf("file %q changed while it was opened", path)
			}
		}
	}
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return f, nil
}

func withinAny(dirs []string, target string) bool {
	for _, d := range dirs {
		if within(d, target) {
			return true
		}
	}
	return false
}

// within reports whether target is dir or below it; both are cleaned
// absolute paths.
func within(dir, target string) bool {
	rel, err := filepath.Rel(dir, target)
	if err != nil || filepath.IsAbs(rel) {
		return false
	}
	return rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
