package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cosell-mcp/cosell-mcp/internal/store"
)

// maxNotifyPayload bounds the notification payload (PostgreSQL's limit is
// 8000 bytes); a longer trigger URI is announced with an empty payload.
const maxNotifyPayload = 7999

// Append stores events for the trigger in one transaction and returns the
// ones that were new, in order, with their sequence numbers. An event whose
// key the trigger already has (stored earlier or earlier in the same batch)
// is skipped silently. When it returns an error none of the batch was
// stored. It returns an error wrapping store.ErrNotFound if the trigger does
// not exist; inactive triggers accept events. Sequence numbers are per
// trigger (see the package documentation).
func (s *Store) Append(ctx context.Context, triggerURI string, events []store.NewEvent) ([]store.Event, error) {
	return s.append(ctx, triggerURI, events, nil, false)
}

// AppendWithState is Append that also replaces the trigger's state in the
// same transaction: either the events and the new state are both stored or
// neither is. A nil or empty state leaves the stored state unchanged
// (SetTriggerState clears it).
func (s *Store) AppendWithState(ctx context.Context, triggerURI string, events []store.NewEvent, state json.RawMessage) ([]store.Event, error) {
	if err := checkJSON("state", state); err != nil {
		return nil, fmt.Errorf("pgstore: trigger %q: %w", triggerURI, err)
	}
	return s.append(ctx, triggerURI, events, state, len(state) > 0)
}

func (s *Store) append(ctx context.Context, uri string, events []store.NewEvent, state json.RawMessage, withState bool) ([]store.Event, error) {
	// Validate and drop the keys repeated within the batch (the first one
	// wins) before touching the database.
	var (
		keys     = make([]string, 0, len(events))
		payloads = make([]string, 0, len(events))
		raws     = make([]*string, 0, len(events))
		seen     = make(map[string]bool, len(events))
	)
	for i, e := range events {
		if e.Key == "" {
			return nil, fmt.Errorf("pgstore: trigger %q: event %d has an empty key", uri, i)
		}
		payload := "null"
		if len(e.Payload) > 0 {
			if !json.Valid(e.Payload) {
				return nil, fmt.Errorf("pgstore: trigger %q: event %d (key %q): payload is not valid JSON", uri, i, e.Key)
			}
			payload = text(e.Payload)
		}
		if len(e.Raw) > 0 && !json.Valid(e.Raw) {
			return nil, fmt.Errorf("pgstore: trigger %q: event %d (key %q): raw record is not valid JSON", uri, i, e.Key)
		}
		if seen[e.Key] {
			continue
		}
		seen[e.Key] = true
		keys = append(keys, e.Key)
		payloads = append(payloads, payload)
		raws = append(raws, nullText(e.Raw))
	}

	now := s.now()
	var out []store.Event
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		out = nil
		// Lock the trigger row until commit: appends to one trigger are
		// serialised, so their sequence numbers commit in order. FOR NO KEY
		// UPDATE does not block the foreign-key checks of cursor writes.
		var last int64
		err := tx.QueryRow(ctx, `SELECT last_seq FROM triggers WHERE uri = $1 FOR NO KEY UPDATE`, uri).Scan(&last)
		if errors.Is(err, pgx.ErrNoRows) {
			return notFound(uri)
		}
		if err != nil {
			return err
		}
		if f, fenced := store.FenceFrom(ctx); fenced {
			if err := checkFence(ctx, tx, uri, f); err != nil {
				return err
			}
		}
		if len(keys) > 0 {
			// A new statement, hence (read committed) a snapshot taken after
			// the lock was granted: it sees every event committed by the
			// appends that held the lock before.
			rows, err := tx.Query(ctx, `SELECT key FROM events WHERE trigger_uri = $1 AND key = ANY($2)`, uri, keys)
			if err != nil {
				return err
			}
			known, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			have := make(map[string]bool, len(known))
			for _, k := range known {
				have[k] = true
			}
			var (
				seqs               []int64
				nkeys, npay        []string
				nraws              []*string
				next               = last
				newPayload, newRaw = map[string]string{}, map[string]*string{}
			)
			for i, k := range keys {
				if have[k] {
					continue
				}
				next++
				seqs = append(seqs, next)
				nkeys = append(nkeys, k)
				npay = append(npay, payloads[i])
				nraws = append(nraws, raws[i])
				newPayload[k], newRaw[k] = payloads[i], raws[i]
			}
			if len(seqs) > 0 {
				b := &pgx.Batch{}
				// ON CONFLICT is only a safety net: with the row lock held no
				// other append can insert these keys. RETURNING reports what
				// was stored in any case.
				b.Queue(`
INSERT INTO events (trigger_uri, seq, key, payload, raw, received_at)
SELECT $1, u.seq, u.key, u.payload, u.raw, $6
FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[]) AS u(seq, key, payload, raw)
ORDER BY u.seq
ON CONFLICT DO NOTHING
RETURNING seq, key`, uri, seqs, nkeys, npay, nraws, now).Query(func(rows pgx.Rows) error {
					var (
						seq int64
						key string
					)
					_, err := pgx.ForEachRow(rows, []any{&seq, &key}, func() error {
						out = append(out, store.Event{
							Seq: seq, TriggerURI: uri, Key: key,
							Payload: json.RawMessage(newPayload[key]), Raw: rawJSON(newRaw[key]),
							ReceivedAt: now,
						})
						return nil
					})
					return err
				})
				b.Queue(`UPDATE triggers SET last_seq = $1 WHERE uri = $2`, next, uri)
				notice := uri
				if len(notice) > maxNotifyPayload {
					notice = ""
				}
				// Delivered to listeners when, and only if, the transaction commits.
				b.Queue(`SELECT pg_notify($1, $2)`, NotifyChannel, notice)
				if err := tx.SendBatch(ctx, b).Close(); err != nil {
					return err
				}
			}
		}
		if withState {
			if _, err := tx.Exec(ctx, `UPDATE triggers SET state = $1, updated_at = $2 WHERE uri = $3`,
				text(state), now, uri); err != nil {
				return err
			}
		}
		if s.beforeCommit != nil {
			return s.beforeCommit(ctx)
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrFenced) {
			return nil, err
		}
		return nil, fmt.Errorf("pgstore: appending to trigger %q: %w", uri, err)
	}
	// RETURNING gives rows in no promised order.
	sortBySeq(out)
	return out, nil
}

func sortBySeq(evs []store.Event) {
	for i := 1; i < len(evs); i++ { // insertion sort: almost always sorted already
		for j := i; j > 0 && evs[j].Seq < evs[j-1].Seq; j-- {
			evs[j], evs[j-1] = evs[j-1], evs[j]
		}
	}
}

// EventsAfter returns up to limit events of the trigger with Seq > afterSeq,
// in ascending Seq order (limit <= 0 means store.DefaultLimit). Paging by
// passing the last Seq returned never skips an event, whichever replicas
// append.
func (s *Store) EventsAfter(ctx context.Context, triggerURI string, afterSeq int64, limit int) ([]store.Event, error) {
	evs, err := eventsAfter(ctx, s.pool, triggerURI, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("pgstore: reading events of trigger %q: %w", triggerURI, err)
	}
	return evs, nil
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func eventsAfter(ctx context.Context, q querier, uri string, after int64, limit int) ([]store.Event, error) {
	if limit <= 0 {
		limit = store.DefaultLimit
	}
	rows, err := q.Query(ctx, `
SELECT seq, key, payload, raw, received_at FROM events
WHERE trigger_uri = $1 AND seq > $2
ORDER BY seq
LIMIT $3`, uri, after, limit)
	if err != nil {
		return nil, err
	}
	evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Event, error) {
		var (
			e       store.Event
			payload string
			raw     *string
		)
		if err := r.Scan(&e.Seq, &e.Key, &payload, &raw, &e.ReceivedAt); err != nil {
			return store.Event{}, err
		}
		e.TriggerURI, e.Payload, e.Raw, e.ReceivedAt = uri, json.RawMessage(payload), rawJSON(raw), e.ReceivedAt.UTC()
		return e, nil
	})
	if len(evs) == 0 {
		return nil, err // nil when empty, as the SQLite store
	}
	return evs, err
}

// LatestSeq returns the sequence of the newest event ever appended to the
// trigger, even if Prune has since removed it; 0 if the trigger has no events
// or does not exist.
func (s *Store) LatestSeq(ctx context.Context, triggerURI string) (int64, error) {
	var seq int64
	err := s.pool.QueryRow(ctx, `SELECT last_seq FROM triggers WHERE uri = $1`, triggerURI).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("pgstore: reading latest sequence of trigger %q: %w", triggerURI, err)
	}
	return seq, nil
}

// Cursor returns the consumer's position for the trigger: the Seq of the
// last event it has been handed, 0 if it has none.
func (s *Store) Cursor(ctx context.Context, consumer, triggerURI string) (int64, error) {
	var seq int64
	err := s.pool.QueryRow(ctx, `SELECT seq FROM cursors WHERE consumer = $1 AND trigger_uri = $2`,
		consumer, triggerURI).Scan(&seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("pgstore: reading cursor %q of trigger %q: %w", consumer, triggerURI, err)
	}
	return seq, nil
}

// SetCursor moves the consumer's cursor for the trigger to seq. A cursor
// never moves backwards, whichever replicas move it: a seq at or below the
// current position is a no-op. A seq beyond the trigger's LatestSeq is
// rejected, as is a negative one; an unknown trigger is reported with an
// error wrapping store.ErrNotFound.
func (s *Store) SetCursor(ctx context.Context, consumer, triggerURI string, seq int64) error {
	if consumer == "" {
		return errors.New("pgstore: cursor consumer name is empty")
	}
	if seq < 0 {
		return fmt.Errorf("pgstore: cursor %q of trigger %q: negative sequence %d", consumer, triggerURI, seq)
	}
	var latest int64
	err := s.pool.QueryRow(ctx, `SELECT last_seq FROM triggers WHERE uri = $1`, triggerURI).Scan(&latest)
	if errors.Is(err, pgx.ErrNoRows) {
		return notFound(triggerURI)
	}
	if err == nil && seq > latest {
		err = fmt.Errorf("sequence %d is beyond the trigger's latest event %d", seq, latest)
	}
	if err == nil {
		// Sequences only grow, so the check above stays true; the upsert
		// itself keeps the cursor from moving backwards.
		_, err = s.pool.Exec(ctx, `
INSERT INTO cursors (consumer, trigger_uri, seq, updated_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (consumer, trigger_uri) DO UPDATE SET
	seq        = excluded.seq,
	updated_at = excluded.updated_at
WHERE excluded.seq > cursors.seq`, consumer, triggerURI, seq, s.now())
	}
	if err != nil {
		return fmt.Errorf("pgstore: setting cursor %q of trigger %q: %w", consumer, triggerURI, err)
	}
	return nil
}

// ReadAndAdvance returns up to limit events of the trigger after the
// consumer's cursor (limit <= 0 means store.DefaultLimit) and moves the
// cursor past them in the same transaction, holding the cursor's row lock:
// callers sharing a consumer name, on any replicas, split the events between
// them, and no event is handed to the same cursor twice. Delivery is
// at-most-once, as with the SQLite store. It returns an error wrapping
// store.ErrNotFound if the trigger does not exist.
func (s *Store) ReadAndAdvance(ctx context.Context, consumer, triggerURI string, limit int) ([]store.Event, error) {
	if consumer == "" {
		return nil, errors.New("pgstore: cursor consumer name is empty")
	}
	var out []store.Event
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		cur, err := lockCursor(ctx, tx, consumer, triggerURI, s.now())
		if err != nil {
			return err
		}
		// A new statement, hence a snapshot taken after the cursor lock
		// was granted: it sees what a previous holder committed.
		out, err = eventsAfter(ctx, tx, triggerURI, cur, limit)
		if err != nil || len(out) == 0 {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE cursors SET seq = $1, updated_at = $2 WHERE consumer = $3 AND trigger_uri = $4`,
			out[len(out)-1].Seq, s.now(), consumer, triggerURI)
		return err
	})
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("pgstore: reading cursor %q of trigger %q: %w", consumer, triggerURI, err)
	}
	return out, nil
}

// lockCursor locks the consumer's cursor row for the rest of tx, creating it
// at 0 if missing, and returns its position.
func lockCursor(ctx context.Context, tx pgx.Tx, consumer, uri string, now time.Time) (int64, error) {
	const lock = `SELECT seq FROM cursors WHERE consumer = $1 AND trigger_uri = $2 FOR UPDATE`
	var cur int64
	err := tx.QueryRow(ctx, lock, consumer, uri).Scan(&cur)
	if !errors.Is(err, pgx.ErrNoRows) {
		return cur, err
	}
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM triggers WHERE uri = $1)`, uri).Scan(&exists); err != nil {
		return 0, err
	}
	if !exists {
		return 0, notFound(uri)
	}
	// Another caller may create the row at the same moment: DO NOTHING then
	// waits for it, and the lock below finds its row.
	if _, err := tx.Exec(ctx, `
INSERT INTO cursors (consumer, trigger_uri, seq, updated_at) VALUES ($1, $2, 0, $3)
ON CONFLICT (consumer, trigger_uri) DO NOTHING`, consumer, uri, now); err != nil {
		return 0, err
	}
	err = tx.QueryRow(ctx, lock, consumer, uri).Scan(&cur)
	return cur, err
}

// Prune removes events received more than MaxAge ago and, for each trigger,
// all but its MaxEventsPerTrigger newest events, in one transaction, and
// reports how many it removed. Replicas pruning at once take turns.
// Sequence numbers of removed events are never reused, and the removed keys
// are no longer deduplicated.
func (s *Store) Prune(ctx context.Context) (removed int, err error) {
	now := s.now()
	var total int64
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		total = 0
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, pruneLockKey); err != nil {
			return err
		}
		if s.opts.MaxAge > 0 {
			tag, err := tx.Exec(ctx, `DELETE FROM events WHERE received_at < $1`, now.Add(-s.opts.MaxAge))
			if err != nil {
				return err
			}
			total += tag.RowsAffected()
		}
		if s.opts.MaxEventsPerTrigger > 0 {
			// For each trigger with more than keep events, the sequence of
			// the newest event it must lose (found by the primary key index),
			// then everything up to it.
			tag, err := tx.Exec(ctx, `
DELETE FROM events e
USING (
	SELECT t.uri, c.seq
	FROM triggers t
	CROSS JOIN LATERAL (
		SELECT seq FROM events WHERE trigger_uri = t.uri ORDER BY seq DESC OFFSET $1 LIMIT 1
	) c
) cut
WHERE e.trigger_uri = cut.uri AND e.seq <= cut.seq`, s.opts.MaxEventsPerTrigger)
			if err != nil {
				return err
			}
			total += tag.RowsAffected()
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("pgstore: pruning events: %w", err)
	}
	return int(total), nil
}
