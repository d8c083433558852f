package throttle

import (
	"encoding/json"
	"time"
)

// Status is a snapshot of a budget, for agents and operators.
type Status struct {
	// Connection is the budget's name.
	Connection string `json:"connection"`
	// Limit requests are allowed per Window.
	Limit  int           `json:"limit"`
	Window time.Duration `json:"-"`
	// Used is the number of slots that count against the limit at At: those
	// in flight and those released in (At-Window, At].
	Used int `json:"used"`
	// Remaining is Limit-Used (never negative).
	Remaining int `json:"remaining"`
	// InFlight is the number of slots granted whose response has not
	// returned yet (part of Used).
	InFlight int `json:"in_flight,omitempty"`
	// ResetAt is the earliest time the next request may be granted: At when
	// one may go now, otherwise when the oldest counted slot leaves the
	// window or the upstream pause ends. A slot in flight is taken as
	// released at At, so while slots are in flight ResetAt is the earliest
	// it could be, not a promise.
	ResetAt time.Time `json:"reset_at"`
	// PausedUntil is the end of an upstream-requested pause; zero if none.
	PausedUntil time.Time `json:"paused_until,omitzero"`
	// Waiting is the number of callers queued for a slot.
	Waiting int `json:"waiting"`
	// At is when the snapshot was taken.
	At time.Time `json:"at"`
}

// ResetSeconds returns ResetAt-At in whole seconds, rounded up (0 when a
// request may go now).
func (s Status) ResetSeconds() int { return Seconds(s.ResetAt.Sub(s.At)) }

// MarshalJSON adds window_seconds and reset_seconds to the tagged fields.
func (s Status) MarshalJSON() ([]byte, error) {
	type plain Status
	return json.Marshal(struct {
		plain
		WindowSeconds int `json:"window_seconds"`
		ResetSeconds  int `json:"reset_seconds"`
	}{plain(s), Seconds(s.Window), s.ResetSeconds()})
}

// Status returns a snapshot of the budget (the zero Status for a nil
// Budget); with a shared ledger, the figures across processes.
func (b *Budget) Status() Status {
	if b == nil {
		return Status{}
	}
	st := b.localStatus()
	if b.cfg.Shared != nil {
		return b.sharedStatus(st)
	}
	return st
}

// localStatus is the snapshot of this process's own budget.
func (b *Budget) localStatus() Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.clock.Now()
	since := now.Add(-b.cfg.Window)
	used := b.inFlight
	for _, t := range b.log {
		if t.After(since) {
			used++
		}
	}
	st := Status{
		Connection: b.name,
		Limit:      b.cfg.Limit,
		Window:     b.cfg.Window,
		Used:       used,
		Remaining:  max(b.cfg.Limit-used, 0),
		InFlight:   b.inFlight,
		ResetAt:    b.simLocked(now).peek(),
		Waiting:    b.waitingLocked(),
		At:         now,
	}
	if b.paused.After(now) {
		st.PausedUntil = b.paused
	}
	return st
}
