package store

import (
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func userVersion(t *testing.T, s *Store) int {
	t.Helper()
	var v int
	require.NoError(t, s.reader.QueryRowContext(testCtx(t), "PRAGMA user_version").Scan(&v))
	return v
}

func TestOpenCreatesDatabaseWithSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "state.db")
	s := openAt(t, path, Options{})
	ctx := testCtx(t)

	assert.Equal(t, schemaVersion, userVersion(t, s))
	assert.Equal(t, path, s.Path())

	var mode string
	require.NoError(t, s.writer.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode))
	assert.Equal(t, "wal", mode)
	var syncLevel, fk, busy int
	require.NoError(t, s.writer.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&syncLevel))
	assert.Equal(t, 2, syncLevel, "FULL by default")
	require.NoError(t, s.writer.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk))
	assert.Equal(t, 1, fk)
	require.NoError(t, s.writer.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy))
	assert.Equal(t, int(DefaultBusyTimeout.Milliseconds()), busy)

	// Reader connections cannot write.
	_, err := s.reader.ExecContext(ctx, "DELETE FROM triggers")
	require.Error(t, err)

	if runtime.GOOS != "windows" {
		fi, err := os.Stat(path)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
		di, err := os.Stat(filepath.Dir(path))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o700), di.Mode().Perm())
	}
}

func TestRelaxedSyncUsesNormal(t *testing.T) {
	s := openTest(t, Options{RelaxedSync: true})
	var syncLevel int
	require.NoError(t, s.writer.QueryRowContext(testCtx(t), "PRAGMA synchronous").Scan(&syncLevel))
	assert.Equal(t, 1, syncLevel)
}

func TestOpenPathWithURICharacters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "odd ?#% dir", "state.db")
	s := openAt(t, path, Options{})
	addTrigger(t, s, "trigger://odd")
	require.NoError(t, s.Close())
	_, err := os.Stat(path)
	require.NoError(t, err, "the database lives at the literal path")
}

func TestReopenIsIdempotentAndKeepsData(t *testing.T) {
	path := tempDBPath(t)
	ctx := testCtx(t)

	s, err := Open(path, Options{})
	require.NoError(t, err)
	addTrigger(t, s, "trigger://a")
	appended, err := s.AppendWithState(ctx, "trigger://a", newEvents("k", 0, 3), json.RawMessage(`{"hwm":3}`))
	require.NoError(t, err)
	require.Len(t, appended, 3)
	_, err = s.ReadAndAdvance(ctx, "c", "trigger://a", 2)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	for range 3 {
		s, err = Open(path, Options{})
		require.NoError(t, err)
		assert.Equal(t, schemaVersion, userVersion(t, s))
		tr, ok, err := s.Trigger(ctx, "trigger://a")
		require.NoError(t, err)
		require.True(t, ok)
		assert.JSONEq(t, `{"hwm":3}`, string(tr.State))
		assert.Equal(t, appended, allEvents(t, s, "trigger://a"))
		cur, err := s.Cursor(ctx, "c", "trigger://a")
		require.NoError(t, err)
		assert.Equal(t, appended[1].Seq, cur)
		latest, err := s.LatestSeq(ctx, "trigger://a")
		require.NoError(t, err)
		assert.Equal(t, appended[2].Seq, latest)
		require.NoError(t, s.Close())
	}

	// Sequences continue after a reopen.
	s = openAt(t, path, Options{})
	more, err := s.Append(ctx, "trigger://a", newEvents("k", 3, 1))
	require.NoError(t, err)
	require.Len(t, more, 1)
	assert.Greater(t, more[0].Seq, appended[2].Seq)
}

func TestOpenRejectsNewerSchema(t *testing.T) {
	path := tempDBPath(t)
	s, err := Open(path, Options{})
	require.NoError(t, err)
	_, err = s.writer.Exec("PRAGMA user_version = 999")
	require.NoError(t, err)
	require.NoError(t, s.Close())

	_, err = Open(path, Options{})
	require.ErrorContains(t, err, "newer than this build supports")
}

func TestOpenMigratesEmptyExistingFile(t *testing.T) {
	// A database created by someone else at version 0 (e.g. an empty file)
	// is migrated, not rejected.
	path := tempDBPath(t)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	_, err = db.Exec("CREATE TABLE unrelated (x)")
	require.NoError(t, err)
	require.NoError(t, db.Close())

	s := openAt(t, path, Options{})
	assert.Equal(t, schemaVersion, userVersion(t, s))
}

func TestDefaultPath(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("USERPROFILE", home)

	t.Setenv(EnvStateDir, "")
	t.Setenv("XDG_STATE_HOME", "")
	p, err := DefaultPath()
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(home, ".local", "state", "cosell-mcp", "state.db"), p)

	xdg := filepath.Join(t.TempDir(), "xdg")
	t.Setenv("XDG_STATE_HOME", xdg)
	p, err = DefaultPath()
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(xdg, "cosell-mcp", "state.db"), p)

	// A relative XDG_STATE_HOME is invalid per the specification: ignored.
	t.Setenv("XDG_STATE_HOME", "relative/dir")
	p, err = DefaultPath()
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(home, ".local", "state", "cosell-mcp", "state.db"), p)

	override := filepath.Join(t.TempDir(), "override")
	t.Setenv("XDG_STATE_HOME", xdg)
	t.Setenv(EnvStateDir, override)
	p, err = DefaultPath()
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(override, "state.db"), p)

	// The default path is usable as is.
	s := openAt(t, p, Options{})
	addTrigger(t, s, "trigger://x")
}
