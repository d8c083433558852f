package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Event is a stored trigger event.
type Event struct {
	// Seq is the event's position in the store-wide sequence: strictly
	// increasing in commit order, never reused.
	Seq int64
	// TriggerURI is the trigger that produced the event.
	TriggerURI string
	// Key deduplicates events of one trigger, e.g. a deal id, a webhook
	// delivery id or a hash of the payload.
	Key string
	// Payload is the event body as JSON.
	Payload json.RawMessage
	// Raw is the upstream record the payload was shaped from; nil when the
	// payload is the record as received.
	Raw json.RawMessage
	// ReceivedAt is when the store accepted the event.
	ReceivedAt time.Time
}

// NewEvent is an event to append.
type NewEvent struct {
	// Key is the deduplication key; it must not be empty.
	Key string
	// Payload must be valid JSON; empty means JSON null.
	Payload json.RawMessage
	// Raw, when set, must be valid JSON: the upstream record Payload was
	// shaped from, kept for readers who ask for it.
	Raw json.RawMessage
}

// Append stores events for the trigger in one transaction and returns the
// ones that were new, in order, with their sequence numbers. An event whose
// key the trigger already has (stored earlier or earlier in the same batch)
// is skipped silently. When Append returns without error the returned events
// are durable (see the package documentation); when it returns an error none
// of the batch was stored. It returns an error wrapping ErrNotFound if the
// trigger does not exist; inactive triggers accept events.
func (s *Store) Append(ctx context.Context, triggerURI string, events []NewEvent) ([]Event, error) {
	return s.append(ctx, triggerURI, events, nil, false)
}

// AppendWithState is Append that also replaces the trigger's state in the
// same transaction: either the events and the new state are both stored or
// neither is. Pollers use it to move their high-water mark together with the
// events it covers. A nil or empty state leaves the stored state unchanged
// (SetTriggerState clears it).
func (s *Store) AppendWithState(ctx context.Context, triggerURI string, events []NewEvent, state json.RawMessage) ([]Event, error) {
	if err := checkJSON("state", state); err != nil {
		return nil, fmt.Errorf("store: trigger %q: %w", triggerURI, err)
	}
	return s.append(ctx, triggerURI, events, state, len(state) > 0)
}

func (s *Store) append(ctx context.Context, uri string, events []NewEvent, state json.RawMessage, withState bool) ([]Event, error) {
	payloads := make([]string, len(events))
	raws := make([]any, len(events)) // nil (SQL NULL) or the raw record
	for i, e := range events {
		if e.Key == "" {
			return nil, fmt.Errorf("store: trigger %q: event %d has an empty key", uri, i)
		}
		switch {
		case len(e.Payload) == 0:
			payloads[i] = "null"
		case !json.Valid(e.Payload):
			return nil, fmt.Errorf("store: trigger %q: event %d (key %q): payload is not valid JSON", uri, i, e.Key)
		default:
			payloads[i] = string(e.Payload)
		}
		if len(e.Raw) > 0 {
			if !json.Valid(e.Raw) {
				return nil, fmt.Errorf("store: trigger %q: event %d (key %q): raw record is not valid JSON", uri, i, e.Key)
			}
			raws[i] = string(e.Raw)
		}
	}

	now := s.now()
	received := fromNanos(toNanos(now))
	var out []Event
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		var exists int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM triggers WHERE uri = ?`, uri).Scan(&exists)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: %q", ErrNotFound, uri)
		}
		if err != nil {
			return err
		}
		// Multi-row inserts (appendBatch rows a statement): far fewer round
		// trips into SQLite than one statement per event.
		for start := 0; start < len(events); start += appendBatch {
			end := min(start+appendBatch, len(events))
			var q strings.Builder
			q.WriteString(`INSERT INTO events (trigger_uri, key, payload, raw, received_at) VALUES `)
			args := make([]any, 0, 5*(end-start))
			first := map[string]int{} // key → index of its first event in the batch
			for i := start; i < end; i++ {
				if i > start {
					q.WriteString(",")
				}
				q.WriteString("(?, ?, ?, ?, ?)")
				args = append(args, uri, events[i].Key, payloads[i], raws[i], toNanos(now))
				if _, dup := first[events[i].Key]; !dup {
					first[events[i].Key] = i
				}
			}
			q.WriteString(` ON CONFLICT (trigger_uri, key) DO NOTHING RETURNING seq, key`)
			rows, err := tx.QueryContext(ctx, q.String(), args...)
			if err != nil {
				return err
			}
			var batch []Event
			for rows.Next() {
				var (
					seq int64
					key string
				)
				if err := rows.Scan(&seq, &key); err != nil {
					rows.Close()
					return err
				}
				i := first[key]
				batch = append(batch, Event{Seq: seq, TriggerURI: uri, Key: key, Payload: json.RawMessage(payloads[i]), Raw: events[i].Raw, ReceivedAt: received})
			}
			if err := rows.Close(); err != nil {
				return err
			}
			if err := rows.Err(); err != nil {
				return err
			}
			// RETURNING gives rows in no set order; sequences follow the insertion order.
			slices.SortFunc(batch, func(a, b Event) int { return cmp.Compare(a.Seq, b.Seq) })
			out = append(out, batch...)
		}
		if len(events) > 0 {
			if n := len(out); n > 0 {
				if _, err := tx.ExecContext(ctx, `UPDATE triggers SET last_seq = ? WHERE uri = ?`, out[n-1].Seq, uri); err != nil {
					return err
				}
			}
		}
		if withState {
			if err := setState(ctx, tx, uri, state, now); err != nil {
				return err
			}
		}
		if s.beforeCommit != nil {
			if err := s.beforeCommit(ctx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("store: appending to trigger %q: %w", uri, err)
	}
	return out, nil
}

// appendBatch is how many events one INSERT statement stores.
const appendBatch = 256

// EventsAfter returns up to limit events of the trigger with Seq > afterSeq,
// in ascending Seq order (limit <= 0 means DefaultLimit). Paging by passing
// the last Seq returned never skips an event: writes are serialised, so
// sequences become visible in order.
func (s *Store) EventsAfter(ctx context.Context, triggerURI string, afterSeq int64, limit int) ([]Event, error) {
	evs, err := eventsAfter(ctx, s.reader, triggerURI, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("store: reading events of trigger %q: %w", triggerURI, err)
	}
	return evs, nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func eventsAfter(ctx context.Context, q querier, uri string, after int64, limit int) ([]Event, error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	rows, err := q.QueryContext(ctx, `
SELECT seq, key, payload, raw, received_at FROM events
WHERE trigger_uri = ? AND seq > ?
ORDER BY seq
LIMIT ?`, uri, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var (
			e       Event
			payload []byte
			raw     []byte
			recv    int64
		)
		if err := rows.Scan(&e.Seq, &e.Key, &payload, &raw, &recv); err != nil {
			return nil, err
		}
		e.TriggerURI, e.Payload, e.ReceivedAt = uri, json.RawMessage(payload), fromNanos(recv)
		if raw != nil {
			e.Raw = json.RawMessage(raw)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// LatestSeq returns the sequence of the newest event ever appended to the
// trigger, even if Prune has since removed it; 0 if the trigger has no events
// or does not exist.
func (s *Store) LatestSeq(ctx context.Context, triggerURI string) (int64, error) {
	var seq int64
	err := s.reader.QueryRowContext(ctx, `SELECT last_seq FROM triggers WHERE uri = ?`, triggerURI).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: reading latest sequence of trigger %q: %w", triggerURI, err)
	}
	return seq, nil
}

// Cursor returns the consumer's position for the trigger: the Seq of the
// last event it has been handed, 0 if it has none.
func (s *Store) Cursor(ctx context.Context, consumer, triggerURI string) (int64, error) {
	var seq int64
	err := s.reader.QueryRowContext(ctx, `SELECT seq FROM cursors WHERE consumer = ? AND trigger_uri = ?`,
		consumer, triggerURI).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: reading cursor %q of trigger %q: %w", consumer, triggerURI, err)
	}
	return seq, nil
}

// SetCursor moves the consumer's cursor for the trigger to seq. A cursor
// never moves backwards: a seq at or below the current position is a no-op.
// A seq beyond the trigger's LatestSeq is rejected (it would silently skip
// future events), as is a negative one; an unknown trigger is reported with
// an error wrapping ErrNotFound.
func (s *Store) SetCursor(ctx context.Context, consumer, triggerURI string, seq int64) error {
	if consumer == "" {
		return errors.New("store: cursor consumer name is empty")
	}
	if seq < 0 {
		return fmt.Errorf("store: cursor %q of trigger %q: negative sequence %d", consumer, triggerURI, seq)
	}
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		var latest int64
		err := tx.QueryRowContext(ctx, `SELECT last_seq FROM triggers WHERE uri = ?`, triggerURI).Scan(&latest)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: %q", ErrNotFound, triggerURI)
		}
		if err != nil {
			return err
		}
		if seq > latest {
			return fmt.Errorf("sequence %d is beyond the trigger's latest event %d", seq, latest)
		}
		return advance(ctx, tx, consumer, triggerURI, seq, s.now())
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return err
		}
		return fmt.Errorf("store: setting cursor %q of trigger %q: %w", consumer, triggerURI, err)
	}
	return nil
}

func advance(ctx context.Context, tx *sql.Tx, consumer, uri string, seq int64, now time.Time) error {
	_, err := tx.ExecContext(ctx, `
INSERT INTO cursors (consumer, trigger_uri, seq, updated_at) VALUES (?, ?, ?, ?)
ON CONFLICT (consumer, trigger_uri) DO UPDATE SET
	seq        = excluded.seq,
	updated_at = excluded.updated_at
WHERE excluded.seq > cursors.seq`, consumer, uri, seq, toNanos(now))
	return err
}

// ReadAndAdvance returns up to limit events of the trigger after the
// consumer's cursor (limit <= 0 means DefaultLimit) and moves the cursor past
// them in the same transaction. Concurrent callers sharing a consumer name
// therefore split the events between them, and no event is ever handed to
// the same cursor twice, across restarts and crashes included. The price is
// at-most-once delivery: events returned to a caller that then fails before
// delivering them are not returned again (use EventsAfter and SetCursor for
// at-least-once). It returns an error wrapping ErrNotFound if the trigger
// does not exist.
func (s *Store) ReadAndAdvance(ctx context.Context, consumer, triggerURI string, limit int) ([]Event, error) {
	if consumer == "" {
		return nil, errors.New("store: cursor consumer name is empty")
	}
	var out []Event
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		var exists int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM triggers WHERE uri = ?`, triggerURI).Scan(&exists)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: %q", ErrNotFound, triggerURI)
		}
		if err != nil {
			return err
		}
		var cur int64
		err = tx.QueryRowContext(ctx, `SELECT seq FROM cursors WHERE consumer = ? AND trigger_uri = ?`,
			consumer, triggerURI).Scan(&cur)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		out, err = eventsAfter(ctx, tx, triggerURI, cur, limit)
		if err != nil || len(out) == 0 {
			return err
		}
		return advance(ctx, tx, consumer, triggerURI, out[len(out)-1].Seq, s.now())
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("store: reading cursor %q of trigger %q: %w", consumer, triggerURI, err)
	}
	return out, nil
}

// Prune removes events received more than MaxAge ago and, for each trigger,
// all but its MaxEventsPerTrigger newest events, in one transaction, and
// reports how many it removed. Sequence numbers of removed events are never
// reused. Pruning also ends deduplication of the removed keys: an event with
// the key of a pruned one is stored again as new.
func (s *Store) Prune(ctx context.Context) (removed int, err error) {
	now := s.now()
	var total int64
	err = s.withTx(ctx, func(tx *sql.Tx) error {
		total = 0
		if s.opts.MaxAge > 0 {
			cutoff := now.Add(-s.opts.MaxAge)
			res, err := tx.ExecContext(ctx, `DELETE FROM events WHERE received_at < ?`, toNanos(cutoff))
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			total += n
		}
		if s.opts.MaxEventsPerTrigger > 0 {
			n, err := pruneByCount(ctx, tx, s.opts.MaxEventsPerTrigger)
			if err != nil {
				return err
			}
			total += n
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: pruning events: %w", err)
	}
	return int(total), nil
}

func pruneByCount(ctx context.Context, tx *sql.Tx, keep int) (int64, error) {
	// Triggers holding more than keep events, and the sequence of the newest
	// event each must lose.
	rows, err := tx.QueryContext(ctx, `
SELECT t.uri, (SELECT e.seq FROM events e WHERE e.trigger_uri = t.uri ORDER BY e.seq DESC LIMIT 1 OFFSET ?)
FROM triggers t`, keep)
	if err != nil {
		return 0, err
	}
	type cut struct {
		uri string
		seq int64
	}
	var cuts []cut
	for rows.Next() {
		var (
			c   cut
			seq sql.NullInt64
		)
		if err := rows.Scan(&c.uri, &seq); err != nil {
			rows.Close()
			return 0, err
		}
		if seq.Valid {
			c.seq = seq.Int64
			cuts = append(cuts, c)
		}
	}
	err = rows.Err()
	if cerr := rows.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	var total int64
	for _, c := range cuts {
		res, err := tx.ExecContext(ctx, `DELETE FROM events WHERE trigger_uri = ? AND seq <= ?`, c.uri, c.seq)
		if err != nil {
			return 0, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}
