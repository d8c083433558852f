package store

import (
	"context"
	"encoding/json"
)

// Backend is what the server keeps of triggers, events and cursors: the
// embedded SQLite store (*Store) or, in cluster mode, the PostgreSQL one
// (internal/store/pgstore). Both keep the same rules (see Store's methods),
// except where their documentation says otherwise.
type Backend interface {
	// Path describes where the data lives (a file path, or a database).
	Path() string
	Close() error

	UpsertTrigger(ctx context.Context, t Trigger) error
	Trigger(ctx context.Context, uri string) (Trigger, bool, error)
	Triggers(ctx context.Context, activeOnly bool) ([]Trigger, error)
	SetTriggerState(ctx context.Context, uri string, state json.RawMessage) error
	DeactivateTrigger(ctx context.Context, uri string) error

	Append(ctx context.Context, triggerURI string, events []NewEvent) ([]Event, error)
	AppendWithState(ctx context.Context, triggerURI string, events []NewEvent, state json.RawMessage) ([]Event, error)
	EventsAfter(ctx context.Context, triggerURI string, afterSeq int64, limit int) ([]Event, error)
	LatestSeq(ctx context.Context, triggerURI string) (int64, error)

	Cursor(ctx context.Context, consumer, triggerURI string) (int64, error)
	SetCursor(ctx context.Context, consumer, triggerURI string, seq int64) error
	ReadAndAdvance(ctx context.Context, consumer, triggerURI string, limit int) ([]Event, error)

	Prune(ctx context.Context) (removed int, err error)
}

var _ Backend = (*Store)(nil)
