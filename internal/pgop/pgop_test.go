package pgop

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
)

var errPermanent = errors.New("permanent")

// failing returns an op that fails with errs in turn, then succeeds, and
// counts its calls.
func failing(calls *int, errs ...error) func(context.Context) error {
	return func(context.Context) error {
		*calls++
		if *calls <= len(errs) {
			return errs[*calls-1]
		}
		return nil
	}
}

func TestDoRetriesOnlyBrokenConnections(t *testing.T) {
	broken := errors.New("unexpected EOF")
	cases := []struct {
		name  string
		errs  []error
		calls int
		err   error
	}{
		{"two broken connections, then success", []error{broken, broken}, 3, nil},
		{"three broken connections: the last error", []error{broken, broken, broken}, 3, broken},
		{"an answer from the server is final", []error{&pgconn.PgError{Code: "23505"}}, 1, &pgconn.PgError{Code: "23505"}},
		{"a time-out is final", []error{context.DeadlineExceeded}, 1, context.DeadlineExceeded},
		{"a permanent error is final", []error{errPermanent}, 1, errPermanent},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			calls := 0
			err := Do(context.Background(), time.Minute, failing(&calls, c.errs...), errPermanent)
			assert.Equal(t, c.calls, calls)
			assert.Equal(t, c.err, err)
		})
	}
}

func TestDoReturnsTheCallersEnd(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := Do(ctx, time.Minute, func(context.Context) error { calls++; cancel(); return errors.New("unexpected EOF") })
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, 1, calls, "no retry once the caller has gone")
}
