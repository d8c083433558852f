package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Trigger is one trigger the server keeps running: a resource URI, what kind
// of trigger it is and its connector-specific state.
type Trigger struct {
	// URI is the resource URI; it identifies the trigger.
	URI string
	// Kind names the trigger implementation, e.g. "pipedrive.new_deal".
	Kind string
	// Params are the trigger's parameters (as carried by the URI), as JSON.
	Params json.RawMessage
	// State is the trigger's private state as JSON, e.g. a poller's
	// high-water mark or a webhook subscription id and secret.
	State json.RawMessage
	// Active reports whether the trigger should be running.
	Active bool
	// Owner names the principal the trigger belongs to ("" for the server's own).
	Owner string
	// Credential is the caller's own upstream credential the trigger polls
	// with, sealed with the server's state key; nil for the server's credential.
	Credential []byte
	// CreatedAt and UpdatedAt are maintained by the store.
	CreatedAt, UpdatedAt time.Time
}

// UpsertTrigger creates the trigger t.URI or updates its kind, params and
// active flag. A nil t.State keeps the stored state (so re-registering a
// trigger after a restart does not lose its high-water mark); a non-nil one
// replaces it. CreatedAt is set on creation (t.CreatedAt if non-zero,
// otherwise now) and kept afterwards; UpdatedAt is set to now.
func (s *Store) UpsertTrigger(ctx context.Context, t Trigger) error {
	if t.URI == "" {
		return errors.New("store: trigger URI is empty")
	}
	if t.Kind == "" {
		return fmt.Errorf("store: trigger %q: kind is empty", t.URI)
	}
	if err := checkJSON("params", t.Params); err != nil {
		return fmt.Errorf("store: trigger %q: %w", t.URI, err)
	}
	if err := checkJSON("state", t.State); err != nil {
		return fmt.Errorf("store: trigger %q: %w", t.URI, err)
	}
	now := s.now()
	created := t.CreatedAt
	if created.IsZero() {
		created = now
	}
	_, err := s.writer.ExecContext(ctx, `
INSERT INTO triggers (uri, kind, params, state, active, owner, credential, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (uri) DO UPDATE SET
	kind       = excluded.kind,
	params     = excluded.params,
	state      = COALESCE(excluded.state, triggers.state),
	active     = excluded.active,
	owner      = excluded.owner,
	credential = excluded.credential,
	updated_at = excluded.updated_at`,
		t.URI, t.Kind, nullJSON(t.Params), nullJSON(t.State), t.Active, t.Owner, t.Credential, toNanos(created), toNanos(now))
	if err != nil {
		return fmt.Errorf("store: upserting trigger %q: %w", t.URI, err)
	}
	return nil
}

const triggerColumns = `uri, kind, params, state, active, owner, credential, created_at, updated_at`

type rowScanner interface{ Scan(dest ...any) error }

func scanTrigger(r rowScanner) (Trigger, error) {
	var (
		t                Trigger
		params, state    []byte
		created, updated int64
	)
	if err := r.Scan(&t.URI, &t.Kind, &params, &state, &t.Active, &t.Owner, &t.Credential, &created, &updated); err != nil {
		return Trigger{}, err
	}
	if len(params) > 0 {
		t.Params = json.RawMessage(params)
	}
	if len(state) > 0 {
		t.State = json.RawMessage(state)
	}
	t.CreatedAt, t.UpdatedAt = fromNanos(created), fromNanos(updated)
	return t, nil
}

// Trigger returns the trigger with the given URI; ok is false if there is
// none.
func (s *Store) Trigger(ctx context.Context, uri string) (t Trigger, ok bool, err error) {
	row := s.reader.QueryRowContext(ctx, `SELECT `+triggerColumns+` FROM triggers WHERE uri = ?`, uri)
	t, err = scanTrigger(row)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return Trigger{}, false, nil
	case err != nil:
		return Trigger{}, false, fmt.Errorf("store: reading trigger %q: %w", uri, err)
	}
	return t, true, nil
}

// Triggers lists the stored triggers (only the active ones if activeOnly),
// oldest first.
func (s *Store) Triggers(ctx context.Context, activeOnly bool) ([]Trigger, error) {
	q := `SELECT ` + triggerColumns + ` FROM triggers`
	if activeOnly {
		q += ` WHERE active`
	}
	q += ` ORDER BY created_at, uri`
	rows, err := s.reader.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("store: listing triggers: %w", err)
	}
	defer rows.Close()
	var out []Trigger
	for rows.Next() {
		t, err := scanTrigger(rows)
		if err != nil {
			return nil, fmt.Errorf("store: listing triggers: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: listing triggers: %w", err)
	}
	return out, nil
}

// SetTriggerState replaces the trigger's state (nil clears it). It returns
// an error wrapping ErrNotFound if the trigger does not exist. A poller
// should move its high-water mark with AppendWithState instead, so that the
// mark and the events it covers are stored together.
func (s *Store) SetTriggerState(ctx context.Context, uri string, state json.RawMessage) error {
	if err := checkJSON("state", state); err != nil {
		return fmt.Errorf("store: trigger %q: %w", uri, err)
	}
	return s.withTx(ctx, func(tx *sql.Tx) error {
		return setState(ctx, tx, uri, state, s.now())
	})
}

func setState(ctx context.Context, tx *sql.Tx, uri string, state json.RawMessage, now time.Time) error {
	res, err := tx.ExecContext(ctx, `UPDATE triggers SET state = ?, updated_at = ? WHERE uri = ?`,
		nullJSON(state), toNanos(now), uri)
	if err != nil {
		return fmt.Errorf("store: setting state of trigger %q: %w", uri, err)
	}
	return mustAffect(res, uri)
}

// DeactivateTrigger marks the trigger inactive. Its events, state and
// cursors are kept (Prune ages the events out). It returns an error wrapping
// ErrNotFound if the trigger does not exist.
func (s *Store) DeactivateTrigger(ctx context.Context, uri string) error {
	res, err := s.writer.ExecContext(ctx, `UPDATE triggers SET active = 0, updated_at = ? WHERE uri = ?`,
		toNanos(s.now()), uri)
	if err != nil {
		return fmt.Errorf("store: deactivating trigger %q: %w", uri, err)
	}
	return mustAffect(res, uri)
}

func mustAffect(res sql.Result, uri string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: trigger %q: %w", uri, err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %q", ErrNotFound, uri)
	}
	return nil
}

func checkJSON(what string, m json.RawMessage) error {
	if len(m) > 0 && !json.Valid(m) {
		return fmt.Errorf("%s is not valid JSON", what)
	}
	return nil
}
