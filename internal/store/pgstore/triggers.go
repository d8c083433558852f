package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/cosell-mcp/cosell-mcp/internal/store"
)

// UpsertTrigger creates the trigger t.URI or updates its kind, params,
// active flag, owner and credential. A nil t.State keeps the stored state; a
// non-nil one replaces it. CreatedAt is set on creation (t.CreatedAt if
// non-zero, otherwise now) and kept afterwards; UpdatedAt is set to now.
func (s *Store) UpsertTrigger(ctx context.Context, t store.Trigger) error {
	if t.URI == "" {
		return errors.New("pgstore: trigger URI is empty")
	}
	if t.Kind == "" {
		return fmt.Errorf("pgstore: trigger %q: kind is empty", t.URI)
	}
	if err := checkJSON("params", t.Params); err != nil {
		return fmt.Errorf("pgstore: trigger %q: %w", t.URI, err)
	}
	if err := checkJSON("state", t.State); err != nil {
		return fmt.Errorf("pgstore: trigger %q: %w", t.URI, err)
	}
	now := s.now()
	created := now
	if !t.CreatedAt.IsZero() {
		created = dbTime(t.CreatedAt)
	}
	_, err := s.pool.Exec(ctx, `
INSERT INTO triggers (uri, kind, params, state, active, owner, credential, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (uri) DO UPDATE SET
	kind       = excluded.kind,
	params     = excluded.params,
	state      = COALESCE(excluded.state, triggers.state),
	active     = excluded.active,
	owner      = excluded.owner,
	credential = excluded.credential,
	updated_at = excluded.updated_at`,
		t.URI, t.Kind, nullText(t.Params), nullText(t.State), t.Active, t.Owner, t.Credential, created, now)
	if err != nil {
		return fmt.Errorf("pgstore: upserting trigger %q: %w", t.URI, err)
	}
	return nil
}

const triggerColumns = `uri, kind, params, state, active, owner, credential, created_at, updated_at`

func scanTrigger(r pgx.Row) (store.Trigger, error) {
	var (
		t             store.Trigger
		params, state *string
	)
	if err := r.Scan(&t.URI, &t.Kind, &params, &state, &t.Active, &t.Owner, &t.Credential, &t.CreatedAt, &t.UpdatedAt); err != nil {
		return store.Trigger{}, err
	}
	t.Params, t.State = rawJSON(params), rawJSON(state)
	t.CreatedAt, t.UpdatedAt = t.CreatedAt.UTC(), t.UpdatedAt.UTC()
	return t, nil
}

// Trigger returns the trigger with the given URI; ok is false if there is
// none.
func (s *Store) Trigger(ctx context.Context, uri string) (t store.Trigger, ok bool, err error) {
	t, err = scanTrigger(s.pool.QueryRow(ctx, `SELECT `+triggerColumns+` FROM triggers WHERE uri = $1`, uri))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return store.Trigger{}, false, nil
	case err != nil:
		return store.Trigger{}, false, fmt.Errorf("pgstore: reading trigger %q: %w", uri, err)
	}
	return t, true, nil
}

// Triggers lists the stored triggers (only the active ones if activeOnly),
// oldest first.
func (s *Store) Triggers(ctx context.Context, activeOnly bool) ([]store.Trigger, error) {
	q := `SELECT ` + triggerColumns + ` FROM triggers`
	if activeOnly {
		q += ` WHERE active`
	}
	q += ` ORDER BY created_at, uri`
	rows, err := s.pool.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("pgstore: listing triggers: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Trigger, error) { return scanTrigger(r) })
	if err != nil {
		return nil, fmt.Errorf("pgstore: listing triggers: %w", err)
	}
	if len(out) == 0 {
		return nil, nil // nil when empty, as the SQLite store
	}
	return out, nil
}

// SetTriggerState replaces the trigger's state (nil clears it). It returns
// an error wrapping store.ErrNotFound if the trigger does not exist. A
// poller should move its high-water mark with AppendWithState instead.
func (s *Store) SetTriggerState(ctx context.Context, uri string, state json.RawMessage) error {
	if err := checkJSON("state", state); err != nil {
		return fmt.Errorf("pgstore: trigger %q: %w", uri, err)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE triggers SET state = $1, updated_at = $2 WHERE uri = $3`,
		nullText(state), s.now(), uri)
	if err != nil {
		return fmt.Errorf("pgstore: setting state of trigger %q: %w", uri, err)
	}
	if tag.RowsAffected() == 0 {
		return notFound(uri)
	}
	return nil
}

// DeactivateTrigger marks the trigger inactive. Its events, state and
// cursors are kept (Prune ages the events out). It returns an error wrapping
// store.ErrNotFound if the trigger does not exist.
func (s *Store) DeactivateTrigger(ctx context.Context, uri string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE triggers SET active = false, updated_at = $1 WHERE uri = $2`, s.now(), uri)
	if err != nil {
		return fmt.Errorf("pgstore: deactivating trigger %q: %w", uri, err)
	}
	if tag.RowsAffected() == 0 {
		return notFound(uri)
	}
	return nil
}

func checkJSON(what string, m json.RawMessage) error {
	if len(m) > 0 && !json.Valid(m) {
		return fmt.Errorf("%s is not valid JSON", what)
	}
	return nil
}
