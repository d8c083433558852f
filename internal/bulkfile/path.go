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
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("file %q does not exist (%s)", path, allowed)
		}
		return "", fmt.Errorf("file %q: %w", path, err)
	}
	inside := false
	for _, d := range allowedDirs {
		if d == "" {
			continue
		}
		dabs, err := filepath.Abs(d)
		if err != nil {
			continue
		}
		dreal, err := filepath.EvalSymlinks(dabs)
		if err != nil {
			continue
		}
		if within(dreal, real) {
			inside = true
			break
		}
	}
	if !inside {
		return "", fmt.Errorf("file %q is outside the allowed directories (%s)", path, allowed)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", fmt.Errorf("file %q: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		if fi.IsDir() {
			return "", fmt.Errorf("%q is a directory, not a file", path)
		}
		return "", fmt.Errorf("%q is not a regular file", path)
	}
	return real, nil
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
