// Package sessionstore keeps the MCP sessions of the streamable HTTP
// transport in PostgreSQL, so that every replica of a cluster knows every
// session: a session opened through one replica is valid on all of them,
// and one ended (or expired) through one is gone on all of them.
//
// A session row holds a hash of its id (SHA-256: the table never holds a
// usable id), its owner (the principal that opened it), when it was created
// and last seen, when it ended, the client's initialize parameters (so that
// another replica can rebuild the session's state) and its logging level.
//
// Rules:
//
//   - Ids are unguessable: a prefix and 192 random bits (crypto/rand).
//   - Validate accepts only a session that exists, has not ended, has been
//     seen within the idle TTL, and belongs to the caller. Anything else is
//     ErrNotFound (ErrEnded when the caller's own session ended or expired),
//     so a principal learns nothing of another's sessions.
//   - Validate refreshes last_seen at most once per TouchEvery, in the same
//     statement that reads the session: one round trip, and a write only
//     now and then. A session therefore expires between IdleTTL-TouchEvery
//     and IdleTTL after its last use.
//   - Every time is the database's clock (clock_timestamp()), never a
//     replica's, so replicas agree on expiry.
//   - Sweep deletes the rows of sessions idle beyond the TTL and of those
//     ended more than a TTL ago. Any replica may run it, at any time and
//     concurrently: it is one idempotent DELETE.
//   - Open creates the table under a transaction-scoped advisory lock, so
//     replicas starting together migrate once.
//   - Fail closed: when the database cannot be reached, every call returns
//     an error wrapping ErrUnavailable (within OpTimeout); Validate never
//     accepts a session it could not check.
package sessionstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/internal/pgop"
)

// IDPrefix starts every session id.
const IDPrefix = "mcp-session-"

// idBytes is the number of random bytes in an id (192 bits).
const idBytes = 24

// Defaults applied by Open for zero Config fields.
const (
	DefaultIdleTTL   = 30 * time.Minute
	DefaultTable     = "cosell_mcp_sessions"
	DefaultOpTimeout = 5 * time.Second
	// maxTouchEvery caps the default TouchEvery.
	maxTouchEvery = time.Minute
)

var (
	// ErrNotFound is a session that is not valid for the caller: unknown,
	// ended, expired, or another principal's.
	ErrNotFound = errors.New("session not found")
	// ErrEnded is the caller's own session that ended or expired. It wraps
	// ErrNotFound.
	ErrEnded = fmt.Errorf("%w: ended or expired", ErrNotFound)
	// ErrUnavailable is wrapped by the errors returned when the database
	// cannot be reached or fails: no session is accepted then.
	ErrUnavailable = errors.New("session store unavailable")
)

// Config sets up a Store. Zero fields take the defaults. Every replica must
// use the same IdleTTL and Table.
type Config struct {
	// IdleTTL ends a session not used for this long (default 30 min).
	IdleTTL time.Duration
	// TouchEvery is how stale last_seen may get before Validate writes it
	// again (default IdleTTL/10, at most one minute; at most IdleTTL/2).
	TouchEvery time.Duration
	// Table names the sessions table (default "cosell_mcp_sessions"):
	// lower-case letters, digits and '_', at most 50.
	Table string
	// OpTimeout bounds each exchange with the database, retries on a broken
	// connection included (default 5s).
	OpTimeout time.Duration
}

var tableRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,49}$`)

func (c Config) withDefaults() (Config, error) {
	if c.IdleTTL <= 0 {
		c.IdleTTL = DefaultIdleTTL
	}
	if c.TouchEvery <= 0 {
		c.TouchEvery = min(c.IdleTTL/10, maxTouchEvery)
	}
	c.TouchEvery = min(c.TouchEvery, c.IdleTTL/2)
	if c.Table == "" {
		c.Table = DefaultTable
	}
	if !tableRE.MatchString(c.Table) {
		return c, fmt.Errorf("sessionstore: invalid table name %q", c.Table)
	}
	if c.OpTimeout <= 0 {
		c.OpTimeout = DefaultOpTimeout
	}
	return c, nil
}

// Session is a valid session as Validate returns it.
type Session struct {
	Owner    string
	Created  time.Time
	LastSeen time.Time
	// Client is what the client sent in its initialize request's params
	// (protocolVersion, capabilities, clientInfo), as given to Generate;
	// nil if none was.
	Client json.RawMessage
	// LogLevel is the level last set with SetLogLevel ("" if never).
	LogLevel string
}

// Store is the sessions table seen from one replica. It is safe for
// concurrent use.
type Store struct {
	pool *pgxpool.Pool
	cfg  Config
	sql  statements
}

// Open creates the sessions table if it does not exist yet and returns the
// Store. The pool stays the caller's.
func Open(ctx context.Context, pool *pgxpool.Pool, cfg Config) (*Store, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Store{pool: pool, cfg: cfg, sql: newStatements(cfg.Table)}
	// Replicas starting together must not create the table at once.
	if err := pgop.Migrate(ctx, pool, cfg.OpTimeout, cfg.Table, s.sql.migrate...); err != nil {
		return nil, fmt.Errorf("sessionstore: migrate: %w: %w", ErrUnavailable, err)
	}
	return s, nil
}

// Config returns the store's configuration with defaults applied.
func (s *Store) Config() Config { return s.cfg }

// NewID returns a fresh unguessable session id.
func NewID() (string, error) {
	b := make([]byte, idBytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return IDPrefix + hex.EncodeToString(b), nil
}

// hashID is the key a session id is stored under.
func hashID(id string) []byte {
	h := sha256.Sum256([]byte(id))
	return h[:]
}

// Generate opens a session owned by owner and returns its id. client is the
// initialize request's params (nil if unknown), kept so that another
// replica can adopt the session; it must be a JSON object or nil.
func (s *Store) Generate(ctx context.Context, owner string, client json.RawMessage) (string, error) {
	if len(client) == 0 || !json.Valid(client) {
		client = nil
	}
	for {
		id, err := NewID()
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		var inserted bool
		err = s.run(ctx, func(ctx context.Context) error {
			tag, err := s.pool.Exec(ctx, s.sql.insert, hashID(id), owner, nullJSON(client))
			inserted = tag.RowsAffected() == 1
			return err
		})
		if err != nil {
			return "", err
		}
		if inserted { // else 192 random bits collided: draw again
			return id, nil
		}
	}
}

// nullJSON is b for a jsonb parameter, SQL NULL when empty.
func nullJSON(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

// Validate returns the session id if it is valid for owner, refreshing its
// last_seen when that is older than TouchEvery. It returns ErrEnded for
// owner's session that ended or expired, ErrNotFound for any other invalid
// id, and an error wrapping ErrUnavailable when the database could not
// tell.
func (s *Store) Validate(ctx context.Context, id, owner string) (*Session, error) {
	if !strings.HasPrefix(id, IDPrefix) {
		return nil, ErrNotFound
	}
	var (
		sess    Session
		ended   bool
		expired bool
		client  []byte
		level   *string
		found   bool
	)
	err := s.run(ctx, func(ctx context.Context) error {
		err := s.pool.QueryRow(ctx, s.sql.validate, hashID(id), owner, s.cfg.IdleTTL.Microseconds(), s.cfg.TouchEvery.Microseconds()).
			Scan(&sess.Owner, &sess.Created, &sess.LastSeen, &ended, &expired, &client, &level)
		if errors.Is(err, pgx.ErrNoRows) {
			found = false
			return nil
		}
		found = err == nil
		return err
	})
	switch {
	case err != nil:
		return nil, err
	case !found || sess.Owner != owner:
		return nil, ErrNotFound
	case ended || expired:
		return nil, ErrEnded
	}
	if len(client) > 0 {
		sess.Client = json.RawMessage(client)
	}
	if level != nil {
		sess.LogLevel = *level
	}
	return &sess, nil
}

// Terminate ends owner's session id. It returns ErrNotFound when id is not
// a live session of owner (unknown, already ended, expired, or another
// principal's: that one is left alone).
func (s *Store) Terminate(ctx context.Context, id, owner string) error {
	var n int64
	err := s.run(ctx, func(ctx context.Context) error {
		tag, err := s.pool.Exec(ctx, s.sql.terminate, hashID(id), owner, s.cfg.IdleTTL.Microseconds())
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// SetLogLevel records the logging level the client of owner's live session
// id asked for, so that a replica adopting the session applies it too.
func (s *Store) SetLogLevel(ctx context.Context, id, owner, level string) error {
	var n int64
	err := s.run(ctx, func(ctx context.Context) error {
		tag, err := s.pool.Exec(ctx, s.sql.setLevel, hashID(id), owner, s.cfg.IdleTTL.Microseconds(), level)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// Sweep deletes the sessions idle for longer than the TTL and those ended
// more than a TTL ago, and returns how many. Validate refuses them already;
// Sweep only keeps the table small. Any replica may run it at any time.
func (s *Store) Sweep(ctx context.Context) (int64, error) {
	var n int64
	err := s.run(ctx, func(ctx context.Context) error {
		tag, err := s.pool.Exec(ctx, s.sql.sweep, s.cfg.IdleTTL.Microseconds())
		n = tag.RowsAffected()
		return err
	})
	return n, err
}

// SweepInterval is how often RunSweeper sweeps by default: a quarter of the
// TTL, between one second and five minutes.
func (s *Store) SweepInterval() time.Duration {
	return min(max(s.cfg.IdleTTL/4, time.Second), 5*time.Minute)
}

// RunSweeper sweeps every interval (SweepInterval if not positive) on clock
// c (the real clock if nil) until ctx ends. Failures are reported to
// onError (if set) and retried at the next tick.
func (s *Store) RunSweeper(ctx context.Context, c clock.Clock, interval time.Duration, onError func(error)) {
	c = clock.OrReal(c)
	if interval <= 0 {
		interval = s.SweepInterval()
	}
	t := c.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil && onError != nil {
			onError(err)
		}
		t.Reset(interval)
	}
}

// run runs op with pgop.Do's time limit and retries, and maps a failure
// (ctx's end included) to ErrUnavailable.
func (s *Store) run(ctx context.Context, op func(context.Context) error) error {
	if err := pgop.Do(ctx, s.cfg.OpTimeout, op); err != nil {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return nil
}

// statements holds the store's SQL with its table name.
type statements struct {
	migrate                                      []string
	insert, validate, terminate, setLevel, sweep string
}

// liveSQL is the condition of a live session of owner $2, $3 being the TTL
// in microseconds.
const liveSQL = `owner = $2 AND ended IS NULL AND last_seen > clock_timestamp() - $3::bigint * interval '1 microsecond'`

func newStatements(table string) statements {
	r := strings.NewReplacer("{t}", table, "{live}", liveSQL)
	return statements{
		migrate: []string{
			r.Replace(`CREATE TABLE IF NOT EXISTS {t} (
	id_hash bytea PRIMARY KEY,
	owner text NOT NULL,
	created timestamptz NOT NULL,
	last_seen timestamptz NOT NULL,
	ended timestamptz,
	client jsonb,
	log_level text
)`),
			r.Replace(`CREATE INDEX IF NOT EXISTS {t}_last_seen ON {t} (last_seen)`),
			r.Replace(`CREATE TABLE IF NOT EXISTS {t}_subscriptions (
	id_hash bytea NOT NULL REFERENCES {t} (id_hash) ON DELETE CASCADE,
	trigger_key text NOT NULL,
	uri text NOT NULL,
	PRIMARY KEY (id_hash, trigger_key)
)`),
			r.Replace(`CREATE INDEX IF NOT EXISTS {t}_subscriptions_by_trigger ON {t}_subscriptions (trigger_key)`),
		},
		insert: r.Replace(`INSERT INTO {t} (id_hash, owner, created, last_seen, client)
SELECT $1, $2, n.now, n.now, $3::jsonb FROM (SELECT clock_timestamp() AS now) n
ON CONFLICT (id_hash) DO NOTHING`),
		// One round trip: read the session and, when it is live, the
		// caller's and last seen more than $4 µs ago, move last_seen to now.
		validate: r.Replace(`WITH n AS MATERIALIZED (SELECT clock_timestamp() AS now),
s AS MATERIALIZED (SELECT * FROM {t} WHERE id_hash = $1),
touch AS (
	UPDATE {t} t SET last_seen = n.now FROM s, n
	WHERE t.id_hash = s.id_hash AND s.owner = $2 AND s.ended IS NULL
		AND s.last_seen > n.now - $3::bigint * interval '1 microsecond'
		AND s.last_seen <= n.now - $4::bigint * interval '1 microsecond'
	RETURNING t.last_seen)
SELECT s.owner, s.created, coalesce((SELECT last_seen FROM touch), s.last_seen),
	s.ended IS NOT NULL, s.last_seen <= n.now - $3::bigint * interval '1 microsecond',
	s.client::text, s.log_level
FROM s, n`),
		terminate: r.Replace(`UPDATE {t} SET ended = clock_timestamp() WHERE id_hash = $1 AND {live}`),
		setLevel:  r.Replace(`UPDATE {t} SET log_level = $4 WHERE id_hash = $1 AND {live}`),
		sweep: r.Replace(`DELETE FROM {t} WHERE last_seen <= clock_timestamp() - $1::bigint * interval '1 microsecond'
	OR ended <= clock_timestamp() - $1::bigint * interval '1 microsecond'`),
	}
}

// HashID is the hex form of the key a session id is stored under: what
// Subscribers names sessions by, never a usable id.
func HashID(id string) string { return hex.EncodeToString(hashID(id)) }

// Subscribe records that the session subscribed to a trigger (its store
// key), with the URI as the session wrote it, so that whichever replica
// holds the session's stream can tell it of new events. The subscription
// ends with the session (and is swept with it).
func (s *Store) Subscribe(ctx context.Context, id, triggerKey, uri string) error {
	return s.run(ctx, func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, `INSERT INTO `+s.cfg.Table+`_subscriptions (id_hash, trigger_key, uri)
SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM `+s.cfg.Table+` WHERE id_hash = $1)
ON CONFLICT (id_hash, trigger_key) DO UPDATE SET uri = EXCLUDED.uri`, hashID(id), triggerKey, uri)
		return err
	})
}

// Unsubscribe ends the session's subscription to a trigger.
func (s *Store) Unsubscribe(ctx context.Context, id, triggerKey string) error {
	return s.run(ctx, func(ctx context.Context) error {
		_, err := s.pool.Exec(ctx, `DELETE FROM `+s.cfg.Table+`_subscriptions WHERE id_hash = $1 AND trigger_key = $2`, hashID(id), triggerKey)
		return err
	})
}

// Subscribers returns the live sessions subscribed to a trigger: their
// HashID, and the URI each subscribed with.
func (s *Store) Subscribers(ctx context.Context, triggerKey string) (map[string]string, error) {
	out := map[string]string{}
	err := s.run(ctx, func(ctx context.Context) error {
		rows, err := s.pool.Query(ctx, `SELECT sub.id_hash, sub.uri FROM `+s.cfg.Table+`_subscriptions sub
JOIN `+s.cfg.Table+` ses ON ses.id_hash = sub.id_hash AND ses.ended IS NULL
WHERE sub.trigger_key = $1`, triggerKey)
		if err != nil {
			return err
		}
		defer rows.Close()
		clear(out)
		for rows.Next() {
			var (
				h   []byte
				uri string
			)
			if err := rows.Scan(&h, &uri); err != nil {
				return err
			}
			out[hex.EncodeToString(h)] = uri
		}
		return rows.Err()
	})
	return out, err
}

// HashOf is HashID, as a method (tools/triggers.SharedSubscriptions).
func (s *Store) HashOf(id string) string { return HashID(id) }
