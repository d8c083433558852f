package bulkfile

import (
	"errors"
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
		got, err := ResolvePath(inFile, Dirs(allowed))
		require.NoError(t, err)
		assert.Equal(t, wantIn, got)
		got, err = ResolvePath(filepath.Join(allowed, "sub", ".", "x", "..", "deals.csv"), Dirs(linkedDir))
		require.NoError(t, err)
		assert.Equal(t, wantIn, got)
	})
	t.Run("second allowed dir", func(t *testing.T) {
		_, err := ResolvePath(inFile, Dirs(outside, allowed))
		require.NoError(t, err)
	})
	t.Run("outside", func(t *testing.T) {
		_, err := ResolvePath(outFile, Dirs(allowed))
		require.ErrorContains(t, err, "outside the allowed directories")
		assert.ErrorContains(t, err, allowed)
	})
	t.Run("dotdot escape", func(t *testing.T) {
		_, err := ResolvePath(filepath.Join(allowed, "..", "out", "secret.csv"), Dirs(allowed))
		require.ErrorContains(t, err, "outside the allowed directories")
	})
	t.Run("prefix is not containment", func(t *testing.T) {
		sibling := allowed + "2"
		require.NoError(t, os.MkdirAll(sibling, 0o755))
		f := filepath.Join(sibling, "x.csv")
		require.NoError(t, os.WriteFile(f, nil, 0o644))
		_, err := ResolvePath(f, Dirs(allowed))
		require.ErrorContains(t, err, "outside the allowed directories")
	})
	t.Run("symlink escaping the dir", func(t *testing.T) {
		link := filepath.Join(allowed, "innocent.csv")
		require.NoError(t, os.Symlink(outFile, link))
		_, err := ResolvePath(link, Dirs(allowed))
		require.ErrorContains(t, err, "outside the allowed directories")
	})
	t.Run("directory", func(t *testing.T) {
		_, err := ResolvePath(filepath.Join(allowed, "sub"), Dirs(allowed))
		require.ErrorContains(t, err, "is a directory")
	})
	t.Run("missing", func(t *testing.T) {
		_, err := ResolvePath(filepath.Join(allowed, "nope.csv"), Dirs(allowed))
		require.ErrorContains(t, err, "does not exist")
		assert.ErrorContains(t, err, allowed)
	})
	t.Run("no allowed dirs", func(t *testing.T) {
		_, err := ResolvePath(inFile, nil)
		require.ErrorContains(t, err, "no folder is allowed for file input")
	})
	t.Run("empty path", func(t *testing.T) {
		_, err := ResolvePath("", Dirs(allowed))
		require.Error(t, err)
	})
	t.Run("relative", func(t *testing.T) {
		t.Chdir(filepath.Join(allowed, "sub"))
		got, err := ResolvePath("deals.csv", Dirs(allowed))
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
		_, err := ResolvePath(p, Dirs(allowed))
		require.ErrorContains(t, err, "outside the allowed directories", p)
		assert.NotContains(t, err.Error(), "does not exist", p)
	}
	linkDir := filepath.Join(allowed, "elsewhere")
	require.NoError(t, os.Symlink(outside, linkDir))
	_, err := ResolvePath(filepath.Join(linkDir, "secret.csv"), Dirs(allowed))
	require.ErrorContains(t, err, "outside the allowed directories")
	_, err = OpenInside(filepath.Join(linkDir, "secret.csv"), Dirs(allowed))
	require.ErrorContains(t, err, "outside the allowed directories")

	inside := filepath.Join(allowed, "deals.csv")
	require.NoError(t, os.WriteFile(inside, []byte("a\n1\n"), 0o600))
	f, err := OpenInside(inside, Dirs(allowed))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	_, err = OpenInside(allowed, Dirs(allowed))
	require.ErrorContains(t, err, "is a directory")
}

// reason is the Refusal of a *PathError, 0 for none.
func reason(err error) Refusal {
	var pe *PathError
	if errors.As(err, &pe) {
		return pe.Reason
	}
	return 0
}

// A NoHidden folder (the default grant of a home folder) serves no file
// below a hidden component, as written or through a symlink, while a
// folder somebody chose serves them.
func TestNoHiddenFolders(t *testing.T) {
	home := t.TempDir()
	for _, d := range []string{".ssh", ".aws", ".config/app", "data/.git", "data/sub"} {
		require.NoError(t, os.MkdirAll(filepath.Join(home, d), 0o700))
	}
	write := func(rel, content string) string {
		p := filepath.Join(home, rel)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	key := write(".ssh/id_ed25519", "PRIVATE KEY")
	creds := write(".aws/credentials", "aws_secret_access_key=x")
	cfg := write(".config/app/settings.csv", "a\n1\n")
	env := write("data/.env", "TOKEN=x")
	gitcfg := write("data/.git/config", "[core]")
	deals := write("data/sub/deals.csv", "a\n1\n")
	linkToKey := filepath.Join(home, "data", "sub", "key.csv")
	require.NoError(t, os.Symlink(key, linkToKey))
	linkToSSH := filepath.Join(home, "data", "ssh")
	require.NoError(t, os.Symlink(filepath.Join(home, ".ssh"), linkToSSH))

	byDefault := []Dir{{Path: home, NoHidden: true}}
	for _, p := range []string{key, creds, cfg, env, gitcfg, filepath.Join(home, ".ssh", "missing"), filepath.Join(home, "data", "sub", "..", "..", ".aws", "credentials")} {
		_, err := OpenInside(p, byDefault)
		require.Error(t, err, p)
		assert.Equal(t, Hidden, reason(err), "%s: %v", p, err)
		assert.Contains(t, err.Error(), "hidden", p)
		assert.NotContains(t, err.Error(), "does not exist", p)
	}
	for _, p := range []string{linkToKey, filepath.Join(linkToSSH, "id_ed25519")} {
		_, err := OpenInside(p, byDefault)
		assert.Equal(t, Hidden, reason(err), "a symlink into a hidden folder: %s: %v", p, err)
	}
	f, err := OpenInside(deals, byDefault)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	// A folder chosen by name is served whole.
	f, err = OpenInside(cfg, Dirs(filepath.Join(home, ".config")))
	require.NoError(t, err)
	require.NoError(t, f.Close())
	// A hidden name is refused as written, before the file system is
	// asked whether it exists.
	_, err = OpenInside(filepath.Join(home, "data", "sub", ".hidden.csv"), byDefault)
	assert.Equal(t, Hidden, reason(err))
}

func TestPathErrorReasons(t *testing.T) {
	root := t.TempDir()
	file := filepath.Join(root, "a.csv")
	require.NoError(t, os.WriteFile(file, []byte("a\n"), 0o600))
	_, err := ResolvePath(file, nil)
	assert.Equal(t, NoFolders, reason(err))
	_, err = ResolvePath("/etc/hostname", Dirs(root))
	assert.Equal(t, Outside, reason(err))
	_, err = ResolvePath(filepath.Join(root, "nope.csv"), Dirs(root))
	assert.Equal(t, Missing, reason(err))
	_, err = ResolvePath(root, Dirs(root))
	assert.Equal(t, NotFile, reason(err))
	var pe *PathError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, []string{root}, pe.Allowed)
}

func TestLocalDirs(t *testing.T) {
	base, err := filepath.EvalSymlinks(t.TempDir())
	require.NoError(t, err)
	home := filepath.Join(base, "home", "ann")
	project := filepath.Join(base, "srv", "project")
	require.NoError(t, os.MkdirAll(filepath.Join(home, "work"), 0o755))
	require.NoError(t, os.MkdirAll(project, 0o755))
	root := string(filepath.Separator)

	cases := []struct {
		name, home, wd string
		want           []Dir
	}{
		{"home and a project elsewhere", home, project, []Dir{{home, true}, {project, true}}},
		{"working directory inside home", home, filepath.Join(home, "work"), []Dir{{home, true}}},
		{"working directory at the root", home, root, []Dir{{home, true}}},
		{"working directory holding home", home, filepath.Join(base, "home"), []Dir{{home, true}}},
		{"no home", "", project, []Dir{{project, true}}},
		{"home at the root", root, project, []Dir{{project, true}}},
		{"nothing", "", root, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, LocalDirs(c.home, c.wd))
		})
	}
	// Symlinks are resolved before comparing.
	link := filepath.Join(base, "link-to-home")
	require.NoError(t, os.Symlink(home, link))
	assert.Equal(t, []Dir{{home, true}}, LocalDirs(link, filepath.Join(link, "work")))
}
