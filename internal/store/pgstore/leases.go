package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cosell-mcp/cosell-mcp/internal/store"
)

// HoldLease claims the lease of a trigger for owner (a replica), or renews
// it, until ttl from now on the database's clock, and returns its epoch. It
// is not held when another owner holds an unexpired lease. The epoch stays
// the same while one owner keeps renewing in time, and grows whenever the
// lease changes hands (or its owner let it expire), so appends fenced with
// an older epoch (store.WithFence) are refused.
func (s *Store) HoldLease(ctx context.Context, uri, owner string, ttl time.Duration) (epoch int64, held bool, err error) {
	err = s.pool.QueryRow(ctx, `
INSERT INTO trigger_leases AS l (uri, owner, epoch, expires_at)
VALUES ($1, $2, 1, clock_timestamp() + $3::bigint * interval '1 microsecond')
ON CONFLICT (uri) DO UPDATE SET
	owner      = EXCLUDED.owner,
	epoch      = CASE WHEN l.owner = EXCLUDED.owner AND l.expires_at > clock_timestamp() THEN l.epoch ELSE l.epoch + 1 END,
	expires_at = EXCLUDED.expires_at
WHERE l.owner = EXCLUDED.owner OR l.expires_at <= clock_timestamp()
RETURNING epoch`, uri, owner, ttl.Microseconds()).Scan(&epoch)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("pgstore: holding the lease of trigger %q: %w", uri, err)
	}
	return epoch, true, nil
}

// ReleaseLease gives up owner's lease of a trigger at epoch (a stopped
// trigger, a replica shutting down), so another replica may take it at once.
// The row stays, expired, so that epochs only grow.
func (s *Store) ReleaseLease(ctx context.Context, uri, owner string, epoch int64) error {
	if _, err := s.pool.Exec(ctx, `UPDATE trigger_leases SET expires_at = clock_timestamp() - interval '1 microsecond'
WHERE uri = $1 AND owner = $2 AND epoch = $3`, uri, owner, epoch); err != nil {
		return fmt.Errorf("pgstore: releasing the lease of trigger %q: %w", uri, err)
	}
	return nil
}

// checkFence refuses an append whose lease is no longer held, and keeps the
// lease from changing hands until the append commits.
func checkFence(ctx context.Context, tx pgx.Tx, uri string, f store.Fence) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM trigger_leases
WHERE uri = $1 AND owner = $2 AND epoch = $3 AND expires_at > clock_timestamp() FOR SHARE`, uri, f.Owner, f.Epoch).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%w (trigger %q, epoch %d)", store.ErrFenced, uri, f.Epoch)
	}
	return err
}
