// Package store is the durable home of trigger state, trigger events and
// consumer cursors: the part of "triggers as resources" that must survive a
// restart or a crash.
//
// It is an embedded SQLite database (pure Go, driver modernc.org/sqlite) in
// WAL mode. The guarantees callers rely on:
//
//   - An event is acknowledged when Append (or AppendWithState) returns
//     without error. An acknowledged event survives Close/Open and a process
//     kill (SIGKILL, panic, OOM): its commit has been written to the WAL file
//     before Append returns.
//   - Events of a trigger are deduplicated by their key: appending the same
//     (trigger URI, key) twice stores it once, so a poller that re-reads a
//     page or a webhook sender that retries a delivery does not create a
//     second event (as long as the first one has not been pruned).
//   - Every stored event gets a sequence number from one per-store counter
//     that only grows and is never reused, even after Prune. Writes are
//     serialised, so a reader that has seen sequence n has also seen every
//     committed event with a smaller sequence: paging with EventsAfter never
//     skips an event.
//   - A poller's high-water mark moves in the same transaction as the events
//     it covers (AppendWithState), so after a crash the poller resumes from a
//     mark consistent with what was stored.
//   - ReadAndAdvance hands an event to a given cursor at most once: reading
//     and moving the cursor commit together. Consumers that need
//     at-least-once delivery instead read with EventsAfter and call SetCursor
//     after they have delivered.
//
// # Durability
//
// By default the writer connection runs with synchronous=FULL: every commit
// is fsynced to the WAL before Append returns, so an acknowledged event also
// survives an operating-system crash or power loss. That matters for webhook
// deliveries, which the sender does not retry once it has seen a 2xx, and
// costs little at the event rates of connector triggers. Options.RelaxedSync
// selects synchronous=NORMAL: commits are still written to the WAL before
// Append returns (so a process kill loses nothing) but are fsynced only at
// checkpoints, so a power loss or kernel crash may roll back the most recent
// commits (the database stays consistent). For pollers that is harmless,
// because their high-water mark rolls back with the events and the events are
// fetched again.
//
// # Concurrency
//
// A Store is safe for concurrent use. All writes go through one connection
// (one *sql.DB limited to a single open connection, beginning transactions
// with BEGIN IMMEDIATE); reads use a separate pool of query-only connections
// and, thanks to WAL, never wait for the writer. Another process opening the
// same file is tolerated (busy_timeout), though one store per file is the
// intended use.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
)

// Defaults applied by Open for zero-valued Options fields.
const (
	DefaultMaxAge              = 30 * 24 * time.Hour
	DefaultMaxEventsPerTrigger = 10000
	DefaultBusyTimeout         = 5 * time.Second
	// DefaultLimit is the page size EventsAfter and ReadAndAdvance use when
	// called with a limit of zero or less.
	DefaultLimit = 1000
)

// Environment variables consulted by DefaultPath.
const (
	// EnvStateDir, when set, names the directory holding state.db directly.
	EnvStateDir = "COSELL_STATE_DIR"
	envXDGState = "XDG_STATE_HOME"
)

const (
	appDirName = "cosell-mcp"
	dbFileName = "state.db"
)

// ErrNotFound is returned (wrapped) when an operation names a trigger that is
// not in the store.
var ErrNotFound = errors.New("store: trigger not found")

// Options configures a Store. The zero value is usable.
type Options struct {
	// MaxAge is how long Prune keeps an event after it was received.
	// Zero means DefaultMaxAge; a negative value disables pruning by age.
	MaxAge time.Duration
	// MaxEventsPerTrigger is how many of the newest events of each trigger
	// Prune keeps. Zero means DefaultMaxEventsPerTrigger; a negative value
	// disables pruning by count.
	MaxEventsPerTrigger int
	// Clock tells the time used for ReceivedAt, CreatedAt, UpdatedAt and by
	// Prune. Nil means the real clock.
	Clock clock.Clock
	// RelaxedSync selects synchronous=NORMAL instead of FULL for the writer:
	// acknowledged events still survive a process crash, but the most recent
	// commits may be lost on power loss or an OS crash. See the package
	// documentation.
	RelaxedSync bool
	// BusyTimeout bounds how long a statement waits for a lock held by
	// another connection (another process, or a checkpoint). Zero means
	// DefaultBusyTimeout.
	BusyTimeout time.Duration
}

// Store is a durable trigger, event and cursor store backed by one SQLite
// file. Create it with Open and release it with Close.
type Store struct {
	path   string
	opts   Options
	writer *sql.DB // exactly one connection: all writes are serialised here
	reader *sql.DB // query-only pool for concurrent reads

	// beforeCommit, when set (by tests), runs inside every write transaction
	// of Append/AppendWithState after the events were inserted and the state
	// updated, just before commit; an error aborts the transaction.
	beforeCommit func(ctx context.Context) error
}

// DefaultPath returns where the server keeps its state database:
// $COSELL_STATE_DIR/state.db when COSELL_STATE_DIR is set, otherwise
// $XDG_STATE_HOME/cosell-mcp/state.db when XDG_STATE_HOME is set to an
// absolute path, otherwise ~/.local/state/cosell-mcp/state.db.
func DefaultPath() (string, error) {
	if dir := os.Getenv(EnvStateDir); dir != "" {
		return filepath.Join(dir, dbFileName), nil
	}
	// The XDG base directory specification says relative paths are invalid
	// and must be ignored.
	if dir := os.Getenv(envXDGState); dir != "" && filepath.IsAbs(dir) {
		return filepath.Join(dir, appDirName, dbFileName), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("store: locating state directory: %w", err)
	}
	return filepath.Join(home, ".local", "state", appDirName, dbFileName), nil
}

// Open opens the database at path, creating it (and its parent directories,
// mode 0700; the file itself mode 0600) when missing, and brings its schema up
// to date. Opening an existing, current database changes nothing.
func Open(path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("store: empty database path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	opts = opts.withDefaults()

	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("store: creating state directory: %w", err)
	}
	// Create the file ourselves so that it gets mode 0600; SQLite gives its
	// -wal and -shm files the same mode as the database file.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: creating database file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("store: creating database file: %w", err)
	}

	sync := "FULL"
	if opts.RelaxedSync {
		sync = "NORMAL"
	}
	busy := strconv.FormatInt(opts.BusyTimeout.Milliseconds(), 10)

	wq := url.Values{}
	wq.Set("_busy_timeout", busy)
	wq.Set("_journal_mode", "WAL")
	wq.Set("_synchronous", sync)
	wq.Set("_foreign_keys", "1")
	wq.Set("_txlock", "immediate")
	writer, err := sql.Open("sqlite", dsn(abs, wq))
	if err != nil {
		return nil, fmt.Errorf("store: opening %s: %w", abs, err)
	}
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)

	s := &Store{path: abs, opts: opts, writer: writer}
	ctx, cancel := context.WithTimeout(context.Background(), opts.BusyTimeout+30*time.Second)
	defer cancel()
	if err := s.checkWAL(ctx); err != nil {
		_ = writer.Close()
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		_ = writer.Close()
		return nil, err
	}

	rq := url.Values{}
	rq.Set("_busy_timeout", busy)
	rq.Set("_foreign_keys", "1")
	rq.Set("_query_only", "1")
	reader, err := sql.Open("sqlite", dsn(abs, rq))
	if err != nil {
		_ = writer.Close()
		return nil, fmt.Errorf("store: opening %s: %w", abs, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	reader.SetMaxOpenConns(n)
	reader.SetMaxIdleConns(n)
	if err := reader.PingContext(ctx); err != nil {
		_ = reader.Close()
		_ = writer.Close()
		return nil, fmt.Errorf("store: opening %s: %w", abs, err)
	}
	s.reader = reader
	return s, nil
}

// Path returns the absolute path of the database file.
func (s *Store) Path() string { return s.path }

// Close releases the database. Every acknowledged write is already durable;
// Close only lets SQLite checkpoint and remove the WAL.
func (s *Store) Close() error {
	var errs []error
	if s.reader != nil {
		errs = append(errs, s.reader.Close())
	}
	if s.writer != nil {
		// Best effort: keep the query planner statistics fresh.
		_, _ = s.writer.Exec("PRAGMA optimize")
		errs = append(errs, s.writer.Close())
	}
	return errors.Join(errs...)
}

func (o Options) withDefaults() Options {
	if o.MaxAge == 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.MaxEventsPerTrigger == 0 {
		o.MaxEventsPerTrigger = DefaultMaxEventsPerTrigger
	}
	o.Clock = clock.OrReal(o.Clock)
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = DefaultBusyTimeout
	}
	return o
}

// dsn builds a "file:" URI so that any character in the path (?, #, %) is
// taken literally, carrying the driver's connection parameters.
func dsn(abs string, q url.Values) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: q.Encode()}
	return u.String()
}

func (s *Store) now() time.Time { return s.opts.Clock.Now() }

func (s *Store) checkWAL(ctx context.Context) error {
	var mode string
	if err := s.writer.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("store: opening %s: %w", s.path, err)
	}
	if mode != "wal" {
		return fmt.Errorf("store: opening %s: journal_mode is %q, want wal", s.path, mode)
	}
	return nil
}

// migrations[i] brings the schema from user_version i to i+1. Append only;
// never edit a migration that has shipped.
var migrations = []string{
	// 1: triggers, events, cursors.
	`
CREATE TABLE triggers (
	uri        TEXT    NOT NULL PRIMARY KEY,
	kind       TEXT    NOT NULL,
	params     TEXT,
	state      TEXT,
	active     INTEGER NOT NULL DEFAULT 1,
	last_seq   INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
CREATE TABLE events (
	seq         INTEGER PRIMARY KEY AUTOINCREMENT,
	trigger_uri TEXT    NOT NULL REFERENCES triggers(uri) ON DELETE CASCADE,
	key         TEXT    NOT NULL,
	payload     TEXT    NOT NULL,
	received_at INTEGER NOT NULL,
	UNIQUE (trigger_uri, key)
);
CREATE INDEX events_by_trigger_seq ON events (trigger_uri, seq);
CREATE INDEX events_by_received_at ON events (received_at);
CREATE TABLE cursors (
	consumer    TEXT    NOT NULL,
	trigger_uri TEXT    NOT NULL REFERENCES triggers(uri) ON DELETE CASCADE,
	seq         INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL,
	PRIMARY KEY (consumer, trigger_uri)
) WITHOUT ROWID;
CREATE INDEX cursors_by_trigger ON cursors (trigger_uri);
`,
	// 2: whose a trigger is, and the caller's own upstream credential it polls with (sealed).
	`
ALTER TABLE triggers ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE triggers ADD COLUMN credential BLOB;
CREATE INDEX triggers_by_owner ON triggers (owner, active);
`,
	// 3: the upstream record an event was shaped from, when it differs from the payload.
	`
ALTER TABLE events ADD COLUMN raw TEXT;
`,
}

// schemaVersion is the user_version of a database whose schema is current.
var schemaVersion = len(migrations)

func (s *Store) migrate(ctx context.Context) error {
	for {
		done, err := s.migrateStep(ctx)
		if err != nil {
			return fmt.Errorf("store: migrating %s: %w", s.path, err)
		}
		if done {
			return nil
		}
	}
}

// migrateStep applies the next pending migration, if any, in its own
// transaction together with the user_version bump.
func (s *Store) migrateStep(ctx context.Context) (done bool, err error) {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer func() { _ = tx.Rollback() }()
	var v int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return false, err
	}
	switch {
	case v > len(migrations):
		return false, fmt.Errorf("schema version %d is newer than this build supports (%d)", v, len(migrations))
	case v == len(migrations):
		return true, nil
	}
	if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
		return false, fmt.Errorf("migration %d: %w", v+1, err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
		return false, err
	}
	return false, tx.Commit()
}

// withTx runs fn in a write transaction (BEGIN IMMEDIATE on the single writer
// connection) and commits it if fn succeeds.
func (s *Store) withTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

func toNanos(t time.Time) int64 { return t.UnixNano() }

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// nullJSON maps an empty raw message to SQL NULL.
func nullJSON(m []byte) any {
	if len(m) == 0 {
		return nil
	}
	return string(m)
}
