package bulkfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Dir is a folder file inputs may be read from.
type Dir struct {
	// Path is the folder; a relative one is taken from the working
	// directory.
	Path string
	// NoHidden refuses a file whose path below Path has a hidden component
	// (a name starting with "."), as written and as resolved. It is meant
	// for folders allowed by default rather than chosen: a home folder
	// holds ~/.ssh, ~/.aws and ~/.config, a project its .env and .git.
	NoHidden bool
}

// Dirs turns folder paths into Dirs without NoHidden: folders somebody
// chose (an operator's configuration, a client's roots).
func Dirs(paths ...string) []Dir {
	out := make([]Dir, 0, len(paths))
	for _, p := range paths {
		out = append(out, Dir{Path: p})
	}
	return out
}

// Refusal says why a path was refused.
type Refusal int

// Why a path is refused.
const (
	// NoFolders: no folder is allowed at all.
	NoFolders Refusal = iota + 1
	// Outside: the file is outside every allowed folder, as written or
	// once its symlinks are resolved.
	Outside
	// Hidden: the file is inside a NoHidden folder, but below a hidden
	// component.
	Hidden
	// Missing: the file does not exist.
	Missing
	// NotFile: the path names a directory or a file that is not regular.
	NotFile
	// Unreadable: any other failure (permissions, a file swapped while
	// it was opened).
	Unreadable
)

// PathError is a refused path (ResolvePath, OpenInside).
type PathError struct {
	// Path is the path as given.
	Path   string
	Reason Refusal
	// Allowed are the allowed folders, as given.
	Allowed []string
	// Err is the underlying failure, for Missing and Unreadable.
	Err error
}

func (e *PathError) Error() string {
	switch e.Reason {
	case Outside, Hidden, Missing:
		return e.Why() + " (allowed directories: " + strings.Join(e.Allowed, ", ") + ")"
	}
	return e.Why()
}

// Why says why the path was refused, without the allowed folders.
func (e *PathError) Why() string {
	q := fmt.Sprintf("%q", e.Path)
	switch e.Reason {
	case NoFolders:
		return "no folder is allowed for file input"
	case Outside:
		return "file " + q + " is outside the allowed directories"
	case Hidden:
		return "file " + q + " is hidden or inside a hidden folder (a name starting with a dot)"
	case Missing:
		return "file " + q + " does not exist"
	case NotFile:
		if e.Err != nil {
			return q + " " + e.Err.Error()
		}
		return q + " is not a regular file"
	}
	return "file " + q + ": " + ExcerptError(e.Err)
}

func (e *PathError) Unwrap() error { return e.Err }

// errIsDir is the NotFile cause of a directory.
var errIsDir = errors.New("is a directory, not a file")

// dir is an allowed folder as written (absolute, cleaned) and as resolved
// ("" when it cannot be resolved).
type dir struct {
	written, real string
	noHidden      bool
}

// admits reports whether target is inside d's folder at root, and not
// below a hidden component when d refuses them; hidden reports a target
// refused for that reason only.
func (d dir) admits(root, target string) (ok, hidden bool) {
	if root == "" || !within(root, target) {
		return false, false
	}
	if d.noHidden && hiddenBelow(root, target) {
		return false, true
	}
	return true, false
}

// ResolvePath turns path into an absolute, cleaned path with symlinks
// resolved, and checks that it names a regular file inside one of
// allowed (whose symlinks are resolved too). A relative path is taken
// relative to the working directory. A refusal is a *PathError.
//
// A path that is not inside an allowed folder as written (after cleaning,
// so "allowed/../x" is outside) is refused before the file system is asked
// anything about it; one that is inside as written is resolved, and
// refused if it resolves (through a symlink) outside, or below a hidden
// component of a NoHidden folder. Nothing is opened.
func ResolvePath(path string, allowed []Dir) (string, error) {
	var dirs []dir
	var names []string
	for _, d := range allowed {
		if d.Path == "" {
			continue
		}
		dabs, err := filepath.Abs(d.Path)
		if err != nil {
			continue
		}
		real, err := filepath.EvalSymlinks(dabs)
		if err != nil {
			real = ""
		}
		dirs = append(dirs, dir{written: dabs, real: real, noHidden: d.NoHidden})
		names = append(names, d.Path)
	}
	refuse := func(r Refusal, err error) (string, error) {
		return "", &PathError{Path: path, Reason: r, Allowed: names, Err: err}
	}
	if len(dirs) == 0 {
		return refuse(NoFolders, nil)
	}
	if strings.TrimSpace(path) == "" {
		return refuse(Unreadable, errors.New("empty file path"))
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return refuse(Unreadable, err)
	}
	// As written: inside a folder as written or as resolved.
	inside, hidden := false, false
	for _, d := range dirs {
		for _, root := range []string{d.written, d.real} {
			ok, h := d.admits(root, abs)
			inside, hidden = inside || ok, hidden || h
		}
	}
	if !inside {
		if hidden {
			return refuse(Hidden, nil)
		}
		return refuse(Outside, nil)
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return refuse(Missing, err)
		}
		return refuse(Unreadable, err)
	}
	// As resolved: inside a folder as resolved.
	inside, hidden = false, false
	for _, d := range dirs {
		ok, h := d.admits(d.real, resolved)
		inside, hidden = inside || ok, hidden || h
	}
	if !inside {
		if hidden {
			return refuse(Hidden, nil)
		}
		return refuse(Outside, nil)
	}
	fi, err := os.Stat(resolved)
	if err != nil {
		return refuse(Unreadable, err)
	}
	if !fi.Mode().IsRegular() {
		if fi.IsDir() {
			return refuse(NotFile, errIsDir)
		}
		return refuse(NotFile, nil)
	}
	return resolved, nil
}

// OpenInside resolves path like ResolvePath, opens the file, and checks
// that what it opened is still the regular file the path resolves to
// inside the allowed folders (a symlink swapped between the check and the
// open is refused). Read the returned file, not the path again.
func OpenInside(path string, allowed []Dir) (*os.File, error) {
	resolved, err := ResolvePath(path, allowed)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(resolved)
	if err != nil {
		return nil, &PathError{Path: path, Reason: Unreadable, Err: err}
	}
	opened, err := f.Stat()
	if err == nil && !opened.Mode().IsRegular() {
		err = &PathError{Path: path, Reason: NotFile}
	}
	if err == nil {
		var again string
		if again, err = ResolvePath(path, allowed); err == nil {
			var now os.FileInfo
			if now, err = os.Stat(again); err == nil && !os.SameFile(opened, now) {
				err = &PathError{Path: path, Reason: Unreadable, Err: errors.New("the file changed while it was opened")}
			}
		}
	}
	if err != nil {
		_ = f.Close()
		var pe *PathError
		if !errors.As(err, &pe) {
			err = &PathError{Path: path, Reason: Unreadable, Err: err}
		}
		return nil, err
	}
	return f, nil
}

// LocalDirs are the folders a server running as the user on the user's
// own machine (stdio) allows when nobody chose any: the user's home folder
// and the working directory, both NoHidden. The working directory is left
// out when it is inside home (home covers it), when it is a volume root or
// holds home (that would open the whole disk or other users' homes), and
// home when it is empty or a volume root. Both are compared with their
// symlinks resolved.
func LocalDirs(home, wd string) []Dir {
	canon := func(p string) string {
		if p == "" {
			return ""
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return ""
		}
		if real, err := filepath.EvalSymlinks(abs); err == nil {
			return real
		}
		return abs
	}
	isRoot := func(p string) bool { return filepath.Dir(p) == p }
	home, wd = canon(home), canon(wd)
	var out []Dir
	if home != "" && !isRoot(home) {
		out = append(out, Dir{Path: home, NoHidden: true})
	} else {
		home = ""
	}
	if wd != "" && !isRoot(wd) && (home == "" || (!within(home, wd) && !within(wd, home))) {
		out = append(out, Dir{Path: wd, NoHidden: true})
	}
	return out
}

// hiddenBelow reports whether target, inside dir, has a component below
// dir that starts with a dot.
func hiddenBelow(dir, target string) bool {
	rel, err := filepath.Rel(dir, target)
	if err != nil || rel == "." {
		return false
	}
	for _, c := range strings.Split(rel, string(filepath.Separator)) {
		if strings.HasPrefix(c, ".") {
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
