package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
)

// Shared returns the ledger as a throttle.Shared, so that a throttle.Budget
// (Config.Shared) spends from it: each process keeps its own queue and
// figures, and every slot also needs the ledger's grant.
func (l *Ledger) Shared() throttle.Shared { return shared{l} }

type shared struct{ l *Ledger }

func (s shared) Acquire(ctx context.Context, connection string, p throttle.Priority) (throttle.SharedSlot, error) {
	g, err := s.l.Acquire(ctx, connection, p)
	if err != nil {
		return nil, asShared(err)
	}
	return sharedGrant{g}, nil
}

func (s shared) PauseFor(ctx context.Context, connection string, d time.Duration) error {
	_, err := s.l.PauseFor(ctx, connection, d)
	return asShared(err)
}

func (s shared) Status(ctx context.Context, connection string) (throttle.Status, error) {
	st, err := s.l.Status(ctx, connection)
	return st, asShared(err)
}

type sharedGrant struct{ g *Grant }

func (g sharedGrant) Done(ctx context.Context, hold time.Duration) error {
	return asShared(g.g.DoneAfter(ctx, hold))
}

// asShared marks an unreachable database as throttle.ErrSharedUnavailable.
func asShared(err error) error {
	if err != nil && errors.Is(err, ErrUnavailable) && !errors.Is(err, throttle.ErrSharedUnavailable) {
		return fmt.Errorf("%w: %w", throttle.ErrSharedUnavailable, err)
	}
	return err
}
