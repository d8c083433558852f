// Package pgstore is the PostgreSQL implementation of the trigger, event and
// cursor store, for cluster mode: several replicas of the server share one
// database. It has the method set and the semantics of package store (the
// SQLite store) and reuses its types (store.Trigger, store.Event,
// store.NewEvent, store.Options, store.ErrNotFound), so callers can hold
// either behind one interface.
//
// The guarantees, across any number of Store instances (replicas) on one
// database:
//
//   - An event is acknowledged when Append (or AppendWithState) returns
//     without error: its transaction has committed. With the server's default
//     synchronous_commit=on it survives a crash of the database server.
//   - Events of a trigger are deduplicated by their key, as in package store.
//   - Append and AppendWithState are atomic: the events, the trigger's new
//     state and its latest sequence commit together or not at all.
//   - Paging with EventsAfter (and ReadAndAdvance) never skips an event, even
//     with concurrent appenders on several replicas (see Sequences).
//   - A cursor never moves backwards, and ReadAndAdvance hands an event to a
//     given consumer name at most once: replicas sharing a consumer name split
//     the events between them, with no event handed out twice and none
//     skipped.
//   - Prune removes events by age and by count per trigger, as package store.
//
// # Sequences
//
// Unlike the SQLite store, whose sequence numbers come from one store-wide
// counter, sequence numbers here are per trigger: each trigger's events are
// numbered 1, 2, 3, … (never reused, even after Prune), and two triggers'
// events may carry the same number. An append locks its trigger's row for the
// rest of its transaction and numbers its new events from the trigger's
// last_seq, so the appends to one trigger commit one after the other in
// sequence order: a reader that sees sequence n of a trigger also sees every
// smaller one. (A global sequence would not give that: with concurrent
// commits a larger number can become visible before a smaller one, and a
// reader paging past it would skip the smaller one for good.) Appends to
// different triggers do not wait for each other. Callers must therefore only
// compare sequence numbers of one trigger, which is all the store API ever
// asks of them.
//
// # Stored bytes
//
// Payloads, raw records, parameters and states are stored as text, byte for
// byte as given, except that bytes that are not valid UTF-8 (possible only
// inside JSON strings) are replaced with U+FFFD, as PostgreSQL text must be
// UTF-8; decoding the JSON gives the same value either way, since
// encoding/json makes the same replacement. Trigger URIs, kinds, keys,
// owners and consumer names must be valid UTF-8 without NUL bytes, or the
// call fails; so does one whose trigger URI, or URI and event key together,
// exceed what a PostgreSQL index entry holds (about 2,700 bytes after
// compression). Times are stored as timestamptz, so they keep microseconds
// (the SQLite store keeps nanoseconds).
//
// # Notices
//
// An append that stores new events also sends a PostgreSQL notification on
// NotifyChannel carrying the trigger URI, delivered when (and only if) the
// transaction commits. Listen receives them on a dedicated connection, so
// each replica can wake its own subscribers for events another replica
// stored.
//
// # Options
//
// Options.MaxAge, MaxEventsPerTrigger and Clock mean what they mean for the
// SQLite store. RelaxedSync sets synchronous_commit=off for the store's
// sessions: commits return before their WAL record is flushed, so a crash of
// the database server may lose the most recent acknowledged writes (the
// database stays consistent). BusyTimeout is not used: bound calls with
// their context instead. The connection pool is configured through the DSN
// (e.g. pool_max_conns).
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/internal/store"
)

// NotifyChannel is the PostgreSQL notification channel on which appends
// announce new events; the payload is the trigger URI.
const NotifyChannel = "cosell_store_events"

// ErrClosed is returned by Listen when the Store is closed.
var ErrClosed = errors.New("pgstore: store closed")

// Advisory lock keys (per database). migrateLockKey serialises migrations
// of replicas starting at once; pruneLockKey lets one replica prune at a
// time.
const (
	migrateLockKey int64 = 0x636f73656c6c0001 // "cosell" 0001
	pruneLockKey   int64 = 0x636f73656c6c0002
)

// Store is a durable trigger, event and cursor store backed by a PostgreSQL
// database, safe for concurrent use and for use by several replicas at once.
// Create it with Open and release it with Close.
type Store struct {
	pool    *pgxpool.Pool
	connCfg *pgx.ConnConfig // for Listen's dedicated connections
	opts    store.Options
	desc    string

	closed    context.Context // done once Close is called
	closeDone context.CancelFunc

	// beforeCommit, when set (by tests), runs inside every append
	// transaction just before commit; an error aborts the transaction.
	beforeCommit func(ctx context.Context) error
	// listenHooks, when set (by tests), observe Listen's connections.
	listenHooks *listenHooks
}

// Open connects to the database named by dsn (a PostgreSQL URL or key=value
// string, as understood by pgx) and brings its schema up to date. Replicas
// may open the same database at once: migrations run under an advisory lock,
// each exactly once. ctx bounds connecting and migrating only.
func Open(ctx context.Context, dsn string, opts store.Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("pgstore: parsing DSN: %w", err)
	}
	opts = withDefaults(opts)
	if opts.RelaxedSync {
		cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "cosell-mcp"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	closed, closeDone := context.WithCancel(context.Background())
	s := &Store{
		pool:      pool,
		connCfg:   cfg.ConnConfig.Copy(),
		opts:      opts,
		desc:      describe(cfg.ConnConfig),
		closed:    closed,
		closeDone: closeDone,
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("pgstore: migrating %s: %w", s.desc, err)
	}
	return s, nil
}

// Path describes the database for logs: user, host, port and database name
// of the DSN, without its password or other parameters.
func (s *Store) Path() string { return s.desc }

// Close ends Listen calls and closes the connection pool, waiting for
// connections in use to be returned. Every acknowledged write is already
// committed. Calls after the first do nothing.
func (s *Store) Close() error {
	s.closeDone()
	s.pool.Close()
	return nil
}

func describe(c *pgx.ConnConfig) string {
	host := c.Host
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "/") {
		host = "[" + host + "]"
	}
	return "postgres://" + c.User + "@" + host + ":" + strconv.Itoa(int(c.Port)) + "/" + c.Database
}

func withDefaults(o store.Options) store.Options {
	if o.MaxAge == 0 {
		o.MaxAge = store.DefaultMaxAge
	}
	if o.MaxEventsPerTrigger == 0 {
		o.MaxEventsPerTrigger = store.DefaultMaxEventsPerTrigger
	}
	o.Clock = clock.OrReal(o.Clock)
	return o
}

// now returns the store clock's time as PostgreSQL keeps it: in UTC,
// truncated to microseconds.
func (s *Store) now() time.Time { return dbTime(s.opts.Clock.Now()) }

func dbTime(t time.Time) time.Time { return t.Truncate(time.Microsecond).UTC() }

// migrations[i] brings the schema from version i to i+1. Append only; never
// edit a migration that has shipped.
var migrations = []string{
	// 1: triggers, events, cursors (the SQLite store's schema version 3, with
	// per-trigger sequences).
	`
CREATE TABLE triggers (
	uri        text        NOT NULL PRIMARY KEY,
	kind       text        NOT NULL,
	params     text,
	state      text,
	active     boolean     NOT NULL DEFAULT true,
	owner      text        NOT NULL DEFAULT '',
	credential bytea,
	last_seq   bigint      NOT NULL DEFAULT 0,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL
);
CREATE INDEX triggers_by_owner ON triggers (owner, active);
CREATE TABLE events (
	trigger_uri text        NOT NULL REFERENCES triggers (uri) ON DELETE CASCADE,
	seq         bigint      NOT NULL,
	key         text        NOT NULL,
	payload     text        NOT NULL,
	raw         text,
	received_at timestamptz NOT NULL,
	PRIMARY KEY (trigger_uri, seq),
	UNIQUE (trigger_uri, key)
);
CREATE INDEX events_by_received_at ON events (received_at);
CREATE TABLE cursors (
	consumer    text        NOT NULL,
	trigger_uri text        NOT NULL REFERENCES triggers (uri) ON DELETE CASCADE,
	seq         bigint      NOT NULL,
	updated_at  timestamptz NOT NULL,
	PRIMARY KEY (consumer, trigger_uri)
);
CREATE INDEX cursors_by_trigger ON cursors (trigger_uri);
`,
	// 2: which replica polls a trigger (see HoldLease).
	`
CREATE TABLE trigger_leases (
	uri        text        NOT NULL PRIMARY KEY,
	owner      text        NOT NULL,
	epoch      bigint      NOT NULL,
	expires_at timestamptz NOT NULL
);
`,
}

// schemaVersion is the version of a database whose schema is current.
var schemaVersion = len(migrations)

// migrate applies the pending migrations in one transaction holding an
// advisory lock, so that replicas starting at once apply each migration
// once: the others wait for the lock and then find nothing to do.
func (s *Store) migrate(ctx context.Context) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLockKey); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
CREATE TABLE IF NOT EXISTS schema_migrations (
	version    integer     NOT NULL PRIMARY KEY,
	applied_at timestamptz NOT NULL DEFAULT now()
)`); err != nil {
			return err
		}
		var v int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(max(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
			return err
		}
		if v > len(migrations) {
			return fmt.Errorf("schema version %d is newer than this build supports (%d)", v, len(migrations))
		}
		for ; v < len(migrations); v++ {
			if _, err := tx.Exec(ctx, migrations[v]); err != nil {
				return fmt.Errorf("migration %d: %w", v+1, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, v+1); err != nil {
				return fmt.Errorf("migration %d: %w", v+1, err)
			}
		}
		return nil
	})
}

// text returns b as a string PostgreSQL accepts as text: each byte that is
// not part of valid UTF-8 is replaced with U+FFFD, as encoding/json does when
// it decodes a string.
func text(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var out strings.Builder
	out.Grow(len(b) + 8)
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size == 1 {
			out.WriteRune(utf8.RuneError)
		} else {
			out.Write(b[:size])
		}
		b = b[size:]
	}
	return out.String()
}

// nullText maps an empty JSON value to SQL NULL.
func nullText(b []byte) *string {
	if len(b) == 0 {
		return nil
	}
	s := text(b)
	return &s
}

// rawJSON turns a nullable text column back into a raw JSON value (nil for
// NULL).
func rawJSON(s *string) []byte {
	if s == nil {
		return nil
	}
	return []byte(*s)
}

func notFound(uri string) error { return fmt.Errorf("%w: %q", store.ErrNotFound, uri) }

var _ store.Backend = (*Store)(nil)
