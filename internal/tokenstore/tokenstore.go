// Package tokenstore keeps the OAuth state of a credential (its current
// refresh token, its current access token and when to stop using it) in
// PostgreSQL, so that every replica of a cluster shares it: a refresh token
// the token endpoint rotated survives a restart, and only one replica at a
// time redeems it.
//
// The state of a credential is one row, found by a key the caller derives
// from the credential (a hash of its tenant, client id and initial refresh
// token, say; never the secret itself). Both tokens are sealed at rest with
// the server's state key (internal/sealed, AES-256-GCM), each bound to its
// key and column so that a sealed value cannot be moved to another row or
// column; the table holds no token in plaintext.
//
// Refresh runs the caller's refresh under the row's lock (SELECT … FOR
// UPDATE in a transaction): one replica calls the token endpoint while the
// others wait for the lock, and then see the state it stored (and, if its
// access token is still fresh, use it without calling the endpoint).
//
// Fail closed: when the database cannot be reached, Load and Refresh return
// an error wrapping ErrUnavailable, and Refresh does not call its function.
package tokenstore

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cosell-mcp/cosell-mcp/internal/pgop"
	"github.com/cosell-mcp/cosell-mcp/internal/sealed"
)

// Defaults applied by Open for zero Config fields.
const (
	DefaultTable     = "cosell_oauth_tokens"
	DefaultOpTimeout = 5 * time.Second
	DefaultMaxHold   = 2 * time.Minute
)

// ErrUnavailable is wrapped by the errors returned when the database cannot
// be reached or fails.
var ErrUnavailable = errors.New("token store unavailable")

// ErrSealed is wrapped by the errors returned when a stored token cannot be
// opened (another state key, or altered data). The row stays as it is; an
// operator may delete it to start again from the configured credential.
var ErrSealed = errors.New("token store: a stored token cannot be opened with this state key")

// State is the OAuth state of one credential. The zero State (Version 0)
// means nothing is stored yet.
type State struct {
	// RefreshToken is the current refresh token ("" for none).
	RefreshToken string
	// AccessToken is the current access token ("" for none).
	AccessToken string
	// Expiry is when to stop using AccessToken (its renewal time, not
	// necessarily the token's own expiry).
	Expiry time.Time
	// Version counts the changes of the stored state: 0 when nothing is
	// stored, one more after every change. Set by the store; ignored in
	// what a RefreshFunc returns.
	Version int64
}

// Same reports whether s and o hold the same tokens and expiry (whatever
// their Version).
func (s State) Same(o State) bool {
	return s.RefreshToken == o.RefreshToken && s.AccessToken == o.AccessToken && s.Expiry.Equal(o.Expiry)
}

// RefreshFunc gets the stored state of a credential, with the credential
// locked for the caller, and returns the state to store: current itself to
// store nothing (say, another replica has just refreshed and its access
// token is fresh), or new tokens from the token endpoint. An error stores
// nothing and is returned by Refresh as is.
type RefreshFunc func(current State) (State, error)

// Store is the OAuth state of credentials, shared by the replicas of a
// cluster. Implementations are safe for concurrent use.
type Store interface {
	// Load returns the stored state of key (the zero State when none),
	// without locking it.
	Load(ctx context.Context, key string) (State, error)
	// Refresh locks key (waiting while another caller, of this or another
	// replica, holds it), calls fn with its stored state, stores what fn
	// returns and unlocks it. It returns the state stored afterwards. fn is
	// called at most once, and not at all when the database cannot be
	// reached.
	Refresh(ctx context.Context, key string, fn RefreshFunc) (State, error)
}

// Config sets up a PG store. Zero fields take the defaults. Every replica
// must use the same Table and state key.
type Config struct {
	// Table names the table of the states (default "cosell_oauth_tokens"):
	// lower-case letters, digits and '_', at most 63.
	Table string
	// OpTimeout bounds Load and taking a connection for Refresh, retries on
	// a broken connection included (default 5s): an unreachable database
	// makes them fail within about this long. Waiting for the lock of a
	// credential is bounded by the caller's context only.
	OpTimeout time.Duration
	// MaxHold bounds how long a Refresh may hold a credential's lock (the
	// session's idle_in_transaction_session_timeout, default 2 min): a
	// replica that hangs while refreshing cannot keep the others waiting
	// longer. Its own Refresh then fails.
	MaxHold time.Duration
}

var tableRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

func (c Config) withDefaults() (Config, error) {
	if c.Table == "" {
		c.Table = DefaultTable
	}
	if !tableRE.MatchString(c.Table) {
		return c, fmt.Errorf("tokenstore: invalid table name %q", c.Table)
	}
	if c.OpTimeout <= 0 {
		c.OpTimeout = DefaultOpTimeout
	}
	if c.MaxHold <= 0 {
		c.MaxHold = DefaultMaxHold
	}
	return c, nil
}

// PG is a Store on PostgreSQL.
type PG struct {
	pool *pgxpool.Pool
	box  *sealed.Box
	cfg  Config
	sql  statements
}

var _ Store = (*PG)(nil)

type statements struct {
	migrate, load, ensure, lock, update string
}

func newStatements(table string) statements {
	r := strings.NewReplacer("{t}", pgx.Identifier{table}.Sanitize())
	return statements{
		migrate: r.Replace(`CREATE TABLE IF NOT EXISTS {t} (
	key text PRIMARY KEY,
	refresh_token bytea,
	access_token bytea,
	access_expiry timestamptz,
	version bigint NOT NULL DEFAULT 0,
	updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
)`),
		load:   r.Replace(`SELECT refresh_token, access_token, access_expiry, version FROM {t} WHERE key = $1`),
		ensure: r.Replace(`INSERT INTO {t} (key) VALUES ($1) ON CONFLICT (key) DO NOTHING`),
		lock:   r.Replace(`SELECT refresh_token, access_token, access_expiry, version FROM {t} WHERE key = $1 FOR UPDATE`),
		update: r.Replace(`UPDATE {t} SET refresh_token = $2, access_token = $3, access_expiry = $4,
	version = version + 1, updated_at = clock_timestamp() WHERE key = $1 RETURNING version`),
	}
}

// Open creates the store's table if it does not exist yet (under an
// advisory lock, so replicas starting together do not race) and returns
// the store. stateKey is the server's 32-byte state key (COSELL_STATE_KEY).
// The pool stays the caller's.
func Open(ctx context.Context, pool *pgxpool.Pool, stateKey []byte, cfg Config) (*PG, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if pool == nil {
		return nil, errors.New("tokenstore: no database")
	}
	box, err := sealed.New(stateKey)
	if err != nil {
		return nil, fmt.Errorf("tokenstore: %w", err)
	}
	s := &PG{pool: pool, box: box, cfg: cfg, sql: newStatements(cfg.Table)}
	if err := s.unavailable(ctx, pgop.Migrate(ctx, pool, cfg.OpTimeout, "cosell-tokenstore:"+cfg.Table, s.sql.migrate)); err != nil {
		return nil, fmt.Errorf("tokenstore: migrate: %w", err)
	}
	return s, nil
}

// Config returns the store's configuration with defaults applied.
func (s *PG) Config() Config { return s.cfg }

// Load returns the stored state of key, the zero State when none.
func (s *PG) Load(ctx context.Context, key string) (State, error) {
	if key == "" {
		return State{}, errors.New("tokenstore: empty key")
	}
	var r row
	var found bool
	err := s.run(ctx, func(ctx context.Context) error {
		r = row{}
		err := s.pool.QueryRow(ctx, s.sql.load, key).Scan(&r.refresh, &r.access, &r.expiry, &r.version)
		if errors.Is(err, pgx.ErrNoRows) {
			found = false
			return nil
		}
		found = err == nil
		return err
	})
	if err != nil {
		return State{}, err
	}
	if !found {
		return State{}, nil
	}
	return s.open(key, r)
}

// Refresh locks key, calls fn with its state and stores fn's result.
func (s *PG) Refresh(ctx context.Context, key string, fn RefreshFunc) (State, error) {
	if key == "" {
		return State{}, errors.New("tokenstore: empty key")
	}
	var err error
	for range 3 {
		var (
			st     State
			called bool
		)
		st, called, err = s.refreshOnce(ctx, key, fn)
		if err == nil {
			return st, nil
		}
		var fe fnError
		if errors.As(err, &fe) {
			return State{}, fe.err
		}
		// After fn, trying again could call it twice; a broken connection
		// before it is tried again on a fresh one.
		if called || ctx.Err() != nil || !pgop.BrokenConnection(err, ErrSealed) {
			break
		}
	}
	switch {
	case ctx.Err() != nil:
		return State{}, ctx.Err()
	case errors.Is(err, ErrSealed):
		return State{}, err
	}
	return State{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// fnError carries the RefreshFunc's own error out of refreshOnce.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// refreshOnce is one attempt of Refresh; called tells whether fn was called.
func (s *PG) refreshOnce(ctx context.Context, key string, fn RefreshFunc) (st State, called bool, err error) {
	opCtx, cancel := context.WithTimeout(ctx, s.cfg.OpTimeout)
	tx, err := s.pool.Begin(opCtx)
	cancel()
	if err != nil {
		return State{}, false, err
	}
	defer func() {
		if err != nil {
			rbCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.OpTimeout)
			defer cancel()
			_ = tx.Rollback(rbCtx)
		}
	}()
	if _, err = tx.Exec(ctx, `SELECT set_config('idle_in_transaction_session_timeout', $1, true)`,
		fmt.Sprintf("%dms", s.cfg.MaxHold.Milliseconds())); err != nil {
		return State{}, false, err
	}
	// The first Refresh of a key creates its row; a concurrent one waits
	// for that insert and then for the row's lock.
	if _, err = tx.Exec(ctx, s.sql.ensure, key); err != nil {
		return State{}, false, err
	}
	var r row
	if err = tx.QueryRow(ctx, s.sql.lock, key).Scan(&r.refresh, &r.access, &r.expiry, &r.version); err != nil {
		return State{}, false, err
	}
	cur, err := s.open(key, r)
	if err != nil {
		return State{}, false, err
	}
	next, ferr := fn(cur)
	if ferr != nil {
		err = fnError{ferr}
		return State{}, true, err
	}
	if next.Same(cur) {
		if err = tx.Commit(ctx); err != nil {
			// Nothing was written: cur is still what is stored.
			err = nil
		}
		return cur, true, nil
	}
	var expiry *time.Time
	if !next.Expiry.IsZero() {
		expiry = &next.Expiry
	}
	if err = tx.QueryRow(ctx, s.sql.update, key,
		s.seal(key, colRefresh, next.RefreshToken), s.seal(key, colAccess, next.AccessToken), expiry,
	).Scan(&next.Version); err != nil {
		return State{}, true, err
	}
	if err = tx.Commit(ctx); err != nil {
		return State{}, true, err
	}
	return next, true, nil
}

// row is a stored state as read.
type row struct {
	refresh, access []byte
	expiry          *time.Time
	version         int64
}

const (
	colRefresh = "refresh_token"
	colAccess  = "access_token"
)

// sealContext binds a sealed token to its key and column.
func sealContext(key, column string) string {
	return "cosell-tokenstore/v1\x00" + key + "\x00" + column
}

func (s *PG) seal(key, column, token string) []byte {
	if token == "" {
		return nil
	}
	return s.box.Seal([]byte(token), sealContext(key, column))
}

func (s *PG) unseal(key, column string, b []byte) (string, error) {
	if b == nil {
		return "", nil
	}
	pt, err := s.box.Open(b, sealContext(key, column))
	if err != nil {
		return "", fmt.Errorf("%w (key %s, %s)", ErrSealed, key, column)
	}
	return string(pt), nil
}

func (s *PG) open(key string, r row) (State, error) {
	var (
		st  = State{Version: r.version}
		err error
	)
	if st.RefreshToken, err = s.unseal(key, colRefresh, r.refresh); err != nil {
		return State{}, err
	}
	if st.AccessToken, err = s.unseal(key, colAccess, r.access); err != nil {
		return State{}, err
	}
	if r.expiry != nil {
		st.Expiry = *r.expiry
	}
	return st, nil
}

// run runs op with pgop.Do's time limit and retries (a sealing failure
// is not retried), and wraps a failure in ErrUnavailable.
func (s *PG) run(ctx context.Context, op func(context.Context) error) error {
	return s.unavailable(ctx, pgop.Do(ctx, s.cfg.OpTimeout, op, ErrSealed))
}

// unavailable wraps a failure in ErrUnavailable; ctx's error when ctx
// ended is returned as is.
func (s *PG) unavailable(ctx context.Context, err error) error {
	if err == nil || ctx.Err() != nil {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}
