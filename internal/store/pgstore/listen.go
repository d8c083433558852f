package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Reconnection back-off and liveness checks of Listen's connection.
const (
	listenMinBackoff   = 50 * time.Millisecond
	listenMaxBackoff   = 5 * time.Second
	listenPingInterval = 30 * time.Second // ping after this long without a notice
	listenPingTimeout  = 10 * time.Second
)

// listenHooks let tests observe Listen's connections.
type listenHooks struct {
	// listening runs once a connection listens and has announced what it
	// may have missed, with the connection's backend process id.
	listening func(pid uint32)
	// reconnecting runs before each connection attempt after the first.
	reconnecting func()
}

// Listen calls onAppend with the trigger URI whenever an append through any
// Store on the database (this replica or another) commits new events, until
// ctx ends (it then returns ctx.Err()) or the Store is closed (ErrClosed).
// It holds a dedicated connection running LISTEN on NotifyChannel.
//
// Notices are hints to go and read, not a log: onAppend may be called more
// than once for one append, and appends in quick succession may be
// announced once per append or fewer times. When the connection is lost,
// Listen reconnects with back-off; after reconnecting it calls onAppend for
// every trigger whose latest sequence moved since the previous connection
// started listening, so no append goes unannounced. Only a failure of the
// first connection is returned, at once.
//
// onAppend runs on Listen's goroutine, one call at a time: it should hand
// the work off rather than block.
func (s *Store) Listen(ctx context.Context, onAppend func(triggerURI string)) error {
	if s.closed.Err() != nil {
		return ErrClosed
	}
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.closed, cancel)
	defer stop()
	done := func() error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return ErrClosed
	}

	var (
		hooks    = s.listenHooks
		baseline map[string]int64 // latest sequences when the previous connection started listening
		backoff  = listenMinBackoff
	)
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if hooks != nil && hooks.reconnecting != nil {
				hooks.reconnecting()
			}
			t := time.NewTimer(backoff)
			select {
			case <-lctx.Done():
				t.Stop()
				return done()
			case <-t.C:
			}
			backoff = min(2*backoff, listenMaxBackoff)
		}
		conn, err := s.listenConn(lctx)
		if err != nil {
			if lctx.Err() != nil {
				return done()
			}
			if attempt == 0 {
				return fmt.Errorf("pgstore: listening: %w", err)
			}
			continue
		}
		err = func() error {
			defer closeConn(conn)
			// Listening already: whatever commits from now on is notified;
			// whatever committed before is in the sequences read now.
			if err := announceChanges(lctx, conn, &baseline, onAppend); err != nil {
				return err
			}
			backoff = listenMinBackoff
			if hooks != nil && hooks.listening != nil {
				hooks.listening(conn.PgConn().PID())
			}
			return receive(lctx, conn, &baseline, onAppend)
		}()
		if lctx.Err() != nil {
			return done()
		}
		_ = err // connection lost: reconnect
	}
}

func (s *Store) listenConn(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.connCfg.Copy())
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{NotifyChannel}.Sanitize()); err != nil {
		closeConn(conn)
		return nil, err
	}
	return conn, nil
}

// receive hands notices to onAppend until the connection fails or ctx ends.
func receive(ctx context.Context, conn *pgx.Conn, baseline *map[string]int64, onAppend func(string)) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, listenPingInterval)
		n, err := conn.WaitForNotification(wctx)
		timedOut := wctx.Err() != nil
		cancel()
		switch {
		case err == nil && n.Payload == "":
			// A trigger URI too long for a notice: find out which.
			if err := announceChanges(ctx, conn, baseline, onAppend); err != nil {
				return err
			}
		case err == nil:
			onAppend(n.Payload)
		case ctx.Err() != nil:
			return ctx.Err()
		case timedOut && !conn.IsClosed():
			// Quiet for a while: make sure the connection is still alive.
			pctx, cancel := context.WithTimeout(ctx, listenPingTimeout)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return err
			}
		default:
			return err
		}
	}
}

// announceChanges reads every trigger's latest sequence and calls onAppend
// for those that moved since *baseline (none when there is no baseline yet,
// on the first connection), then makes the sequences read the new baseline.
func announceChanges(ctx context.Context, conn *pgx.Conn, baseline *map[string]int64, onAppend func(string)) error {
	rows, err := conn.Query(ctx, `SELECT uri, last_seq FROM triggers WHERE last_seq > 0`)
	if err != nil {
		return err
	}
	now := map[string]int64{}
	var (
		uri string
		seq int64
	)
	if _, err := pgx.ForEachRow(rows, []any{&uri, &seq}, func() error {
		now[uri] = seq
		return nil
	}); err != nil {
		return err
	}
	if *baseline != nil {
		for uri, seq := range now {
			if seq > (*baseline)[uri] {
				onAppend(uri)
			}
		}
	}
	*baseline = now
	return nil
}

// closeConn closes a listening connection, not waiting long for a dead peer.
func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), listenPingTimeout)
	defer cancel()
	_ = conn.Close(ctx)
}
