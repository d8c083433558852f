package bulkfile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResolvePath(t *testing.T) {
	root := t.TempDir()
	allowed := filepath.Join(root, "in")
	outside := filepath.Join(root, "out")
	require.NoError(t, os.MkdirAll(filepath.Join(allowed, "sub"), 0o755))
	require.NoError(t, os.MkdirAll(outside, 0o755))
	inFile := filepath.Join(allowed, "sub", "deals.csv")
	outFile := filepath.Join(outside, "secret.csv")
	require.NoError(t, os.WriteFile(inFile, []byte("a\n1\n"), 0o644))
	require.NoError(t, os.WriteFile(outFile, []byte("a\n1\n"), 0o644))
	// The allowed dir is reached through a symlink of its own.
	linkedDir := filepath.Join(root, "linked")
	require.NoError(t, os.Symlink(allowed, linkedDir))
	wantIn, err := filepath.EvalSymlinks(inFile)
	require.NoError(t, err)

	t.Run("inside", func(t *testing.T) {
		got, err := ResolvePath(inFile, []string{allowed})
		require.NoError(t, err)
		assert.Equal(t, wantIn, got)
		got, err = ResolvePath(filepath.Join(allowed, "sub", ".", "x", "..", "deals.csv"), []string{linkedDir})
		require.NoError(t, err)
		assert.Equal(t, wantIn, got)
	})
	t.Run("second allowed dir", func(t *testing.T) {
		_, err := ResolvePath(inFile, []string{outside, allowed})
		require.NoError(t, err)
	})
	t.Run("outside", func(t *testing.T) {
		_, err := ResolvePath(outFile, []string{allowed})
		require.ErrorContains(t, err, "outside the allowed directories")
		assert.ErrorContains(t, err, allowed)
	})
	t.Run("dotdot escape", func(t *testing.T) {
		_, err := ResolvePath(filepath.Join(allowed, "..", "out", "secret.csv"), []string{allowed})
		require.ErrorContains(t, err, "outside the allowed directories")
	})
	t.Run("prefix is not containment", func(t *testing.T) {
		sibling := allowed + "2"
		require.NoError(t, os.MkdirAll(sibling, 0o755))
		f := filepath.Join(sibling, "x.csv")
		require.NoError(t, os.WriteFile(f, nil, 0o644))
		_, err := ResolvePath(f, []string{allowed})
		require.ErrorContains(t, err, "outside the allowed directories")
	})
	t.Run("symlink escaping the dir", func(t *testing.T) {
		link := filepath.Join(allowed, "innocent.csv")
		require.NoError(t, os.Symlink(outFile, link))
		_, err := ResolvePath(link, []string{allowed})
		require.ErrorContains(t, err, "outside the allowed directories")
	})
	t.Run("directory", func(t *testing.T) {
		_, err := ResolvePath(filepath.Join(allowed, "sub"), []string{allowed})
		require.ErrorContains(t, err, "is a directory")
	})
	t.Run("missing", func(t *testing.T) {
		_, err := ResolvePath(filepath.Join(allowed, "nope.csv"), []string{allowed})
		require.ErrorContains(t, err, "does not exist")
		assert.ErrorContains(t, err, allowed)
	})
	t.Run("no allowed dirs", func(t *testing.T) {
		_, err := ResolvePath(inFile, nil)
		require.ErrorContains(t, err, "no directories are allowed for file input; configure")
	})
	t.Run("empty path", func(t *testing.T) {
		_, err := ResolvePath("", []string{allowed})
		require.Error(t, err)
	})
	t.Run("relative", func(t *testing.T) {
		t.Chdir(filepath.Join(allowed, "sub"))
		got, err := ResolvePath("deals.csv", []string{allowed})
		require.NoError(t, err)
		assert.Equal(t, wantIn, got)
	})
}

// Issue finding 1: a path outside the allowed folders is refused as
// written, before the file system is asked about it (no "does not exist"
// oracle), and through symlinked folders too; OpenInside reads the file it
// checked.
func TestResolvePathRefusesBeforeLooking(t *testing.T) {
	root := t.TempDir()
	allowed := filepath.Join(root, "in")
	outside := filepath.Join(root, "out")
	require.NoError(t, os.MkdirAll(allowed, 0o755))
	require.NoError(t, os.MkdirAll(outside, 0o755))
	secret := filepath.Join(outside, "secret.csv")
	require.NoError(t, os.WriteFile(secret, []byte("TOKEN=x\n"), 0o600))

	for _, p := range []string{"/etc/passwd", "/proc/self/environ", filepath.Join(outside, "missing.csv"), filepath.Join(allowed, "..", "out", "missing.csv"), "../../../../../etc/shadow"} {
		_, err := ResolvePath(p, []string{allowed})
		require.ErrorContains(t, err, "outside the allowed directories", p)
		assert.NotContains(t, err.Error(), "does not exist", p)
	}
	linkDir := filepath.Join(allowed, "elsewhere")
	require.NoError(t, os.Symlink(outside, linkDir))
	_, err := ResolvePath(filepath.Join(linkDir, "secret.csv"), []string{allowed})
	require.ErrorContains(t, err, "outside the allowed directories")
	_, err = OpenInside(filepath.Join(linkDir, "secret.csv"), []string{allowed})
	require.ErrorContains(t, err, "outside the allowed directories")

	inside := filepath.Join(allowed, "deals.csv")
	require.NoError(t, os.WriteFile(inside, []byte("a\n1\n"), 0o600))
	f, err := OpenInside(inside, []string{allowed})
	require.NoError(t, err)
	require.NoError(t, f.Close())
	_, err = OpenInside(allowed, []string{allowed})
	require.ErrorContains(t, err, "is a directory")
}
