// Package pgop runs operations on PostgreSQL the way every shared store of
// cluster mode does: within a time limit, again after a broken pooled
// connection, and migrations under an advisory lock so that replicas
// starting together do not create the same table at once.
package pgop

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Do runs op within timeout, and again (at most twice more, within the
// same time) when it failed on a broken connection: an error that is no
// answer from the server, no time-out, and none of permanent. It returns
// nil, ctx's error when ctx ended, or op's last error.
func Do(ctx context.Context, timeout time.Duration, op func(context.Context) error, permanent ...error) error {
	opCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var err error
	for range 3 {
		if err = op(opCtx); err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !BrokenConnection(err, permanent...) || opCtx.Err() != nil {
			break
		}
	}
	return err
}

// BrokenConnection reports whether err is a broken connection (a pooled
// connection the server closed, say after a restart), worth trying again
// on a fresh one: not an answer from the server, a time-out or one of the
// permanent errors.
func BrokenConnection(err error, permanent ...error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	for _, p := range permanent {
		if errors.Is(err, p) {
			return false
		}
	}
	return true
}

// Migrate runs the statements in one transaction holding the advisory
// lock of name, with Do's time limit and retries.
func Migrate(ctx context.Context, pool *pgxpool.Pool, timeout time.Duration, name string, statements ...string) error {
	return Do(ctx, timeout, func(ctx context.Context) error {
		return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext($1), 0)`, name); err != nil {
				return err
			}
			for _, q := range statements {
				if _, err := tx.Exec(ctx, q); err != nil {
					return err
				}
			}
			return nil
		})
	})
}
