// Package triggers runs connector triggers durably: pollers that look for
// new records at a fixed pace within the throttle budget, and webhook
// subscriptions whose callbacks are verified and stored before they are
// acknowledged. Events land in the store; subscribers are told by URI.
package triggers

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sourcegraph/conc"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/internal/store"
	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
)

// Poller finds new records for a polling trigger.
type Poller interface {
	// Poll returns the events newer than state and the state after them.
	// With a nil state (the first start) it returns no events and a state
	// that marks "now", so a new trigger does not flood its readers with
	// history.
	Poll(ctx context.Context, params url.Values, state json.RawMessage) ([]store.NewEvent, json.RawMessage, error)
}

// Webhook registers and removes an upstream subscription for a webhook trigger.
type Webhook interface {
	Register(ctx context.Context, params url.Values, callbackURL string) (subscriberID string, err error)
	Unregister(ctx context.Context, subscriberID string) error
	// Exists reports whether the upstream still knows the subscription.
	Exists(ctx context.Context, subscriberID string) (bool, error)
}

// Kind is one trigger type: a resource URI template and its source.
type Kind struct {
	// Name identifies the kind in the store, e.g. "pipedrive.new_deal".
	Name string
	// Base is the URI without parameters, e.g. "pipedrive://triggers/new-deals".
	Base string
	// Params lists the URI query parameters the kind accepts; Required those it needs.
	Params, Required []string
	// Title and Description describe the resource.
	Title, Description string
	// Deprecated kinds are readable but not listed.
	Deprecated bool
	// Poller and Interval make a polling trigger; Webhook a webhook trigger.
	Poller   Poller
	Interval time.Duration
	Webhook  Webhook
}

// Template is the RFC 6570 URI template of the kind: its parameters, then
// after (the event sequence to read from).
func (k Kind) Template() string {
	return k.Base + "{?" + strings.Join(append(append([]string(nil), k.Params...), "after"), ",") + "}"
}

// Manager starts, stops, restores and feeds triggers.
type Manager struct {
	store     *store.Store
	kinds     []Kind
	publicURL string
	log       *slog.Logger
	notify    func(uri string)
	clock     clock.Clock

	mu      sync.Mutex
	pollers map[string]context.CancelFunc
	ctx     context.Context // ends at Close; every goroutine of the manager runs under it
	cancel  context.CancelFunc
	wg      conc.WaitGroup // owns every goroutine; Close waits for them and re-raises a panic
}

// Options configures a Manager.
type Options struct {
	// PublicURL is where the upstream reaches our webhook listener, e.g. http://127.0.0.1:8765.
	PublicURL string
	Logger    *slog.Logger
	// Notify is called with a trigger URI whenever new events were stored.
	Notify func(uri string)
	// Clock paces polling and retention; nil means the real clock.
	Clock clock.Clock
}

// NewManager returns a manager over the store for the given kinds.
func NewManager(st *store.Store, kinds []Kind, opts Options) *Manager {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Notify == nil {
		opts.Notify = func(string) {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{store: st, kinds: kinds, publicURL: strings.TrimRight(opts.PublicURL, "/"), log: opts.Logger,
		notify: opts.Notify, clock: clock.OrReal(opts.Clock), pollers: map[string]context.CancelFunc{}, ctx: ctx, cancel: cancel}
}

// Kinds returns the registered kinds.
func (m *Manager) Kinds() []Kind { return m.kinds }

// Store returns the event store.
func (m *Manager) Store() *store.Store { return m.store }

// ErrUnknownTrigger is returned for a URI no kind accepts, or with wrong parameters.
var ErrUnknownTrigger = errors.New("not a valid trigger URI")

// Resolve parses a trigger URI into its kind, its parameters and its
// canonical form (parameters sorted, "after" removed).
func (m *Manager) Resolve(raw string) (Kind, url.Values, string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Kind{}, nil, "", fmt.Errorf("%w: %v", ErrUnknownTrigger, err)
	}
	base := u.Scheme + "://" + u.Host + u.Path
	for _, k := range m.kinds {
		if k.Base != base {
			continue
		}
		q := u.Query()
		q.Del("after")
		q.Del("limit")
		for name := range q {
			if !contains(k.Params, name) {
				return Kind{}, nil, "", fmt.Errorf("%w: %s does not take parameter %q (it takes: %s)", ErrUnknownTrigger, k.Base, name, strings.Join(k.Params, ", "))
			}
		}
		for _, name := range k.Required {
			if q.Get(name) == "" {
				return Kind{}, nil, "", fmt.Errorf("%w: %s needs parameter %q", ErrUnknownTrigger, k.Base, name)
			}
		}
		canonical := k.Base
		if enc := q.Encode(); enc != "" { // Encode sorts by key
			canonical += "?" + enc
		}
		return k, q, canonical, nil
	}
	return Kind{}, nil, "", fmt.Errorf("%w: %s", ErrUnknownTrigger, raw)
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// webhookState is what a webhook trigger keeps in the store.
type webhookState struct {
	ID           string `json:"id"`
	Secret       string `json:"secret"`
	SubscriberID string `json:"subscriber_id"`
}

// Start makes the trigger active: a poller starts polling, a webhook
// registers its upstream subscriber. Starting an active trigger is a no-op.
//
// A new polling trigger makes its first poll (the one that marks "now")
// before Start returns, so a record created after Start returns is an event
// of the trigger. A restored one polls at once in the background to catch up.
func (m *Manager) Start(ctx context.Context, raw string) (string, error) {
	k, params, uri, err := m.Resolve(raw)
	if err != nil {
		return "", err
	}
	existing, ok, err := m.store.Trigger(ctx, uri)
	if err != nil {
		return "", err
	}
	if ok && existing.Active && m.running(uri) {
		return uri, nil
	}
	pj, _ := json.Marshal(params)
	t := store.Trigger{URI: uri, Kind: k.Name, Params: pj, Active: true}
	if k.Webhook != nil {
		st, err := m.ensureSubscriber(ctx, k, params, existing.State)
		if err != nil {
			return "", err
		}
		t.State, _ = json.Marshal(st)
	}
	if err := m.store.UpsertTrigger(ctx, t); err != nil {
		return "", err
	}
	if k.Poller != nil {
		primed := false
		if !ok || len(existing.State) == 0 {
			// The first poll of a new trigger marks "now" and spends one call.
			primed = m.PollOnce(throttle.WithPriority(ctx, throttle.Background), k, uri, params)
		}
		m.startPoller(k, uri, params, primed)
	}
	return uri, nil
}

// ensureSubscriber keeps a live upstream subscription for a webhook
// trigger, re-registering it when the upstream lost it.
func (m *Manager) ensureSubscriber(ctx context.Context, k Kind, params url.Values, state json.RawMessage) (webhookState, error) {
	var st webhookState
	if len(state) > 0 {
		_ = json.Unmarshal(state, &st)
	}
	if st.ID == "" {
		st.ID, st.Secret = randomHex(8), randomHex(32)
	}
	if st.SubscriberID != "" {
		if ok, err := k.Webhook.Exists(ctx, st.SubscriberID); err == nil && ok {
			return st, nil
		}
	}
	if m.publicURL == "" {
		return st, errors.New("webhook triggers need the listener's public URL (--public-url)")
	}
	sub, err := k.Webhook.Register(ctx, params, m.CallbackURL(k, st))
	if err != nil {
		return st, err
	}
	st.SubscriberID = sub
	return st, nil
}

// CallbackURL is the capability URL the upstream posts events of one trigger to.
func (m *Manager) CallbackURL(k Kind, st webhookState) string {
	provider, _, _ := strings.Cut(k.Name, ".")
	return fmt.Sprintf("%s/webhooks/%s/%s/%s", m.publicURL, provider, st.ID, st.Secret)
}

// Stop deactivates the trigger: its poller stops, its upstream subscriber
// is deleted. Its events stay readable until retention removes them.
func (m *Manager) Stop(ctx context.Context, raw string) error {
	k, _, uri, err := m.Resolve(raw)
	if err != nil {
		return err
	}
	t, ok, err := m.store.Trigger(ctx, uri)
	if err != nil || !ok {
		return err
	}
	m.mu.Lock()
	if cancel := m.pollers[uri]; cancel != nil {
		cancel()
		delete(m.pollers, uri)
	}
	m.mu.Unlock()
	if k.Webhook != nil {
		var st webhookState
		_ = json.Unmarshal(t.State, &st)
		if st.SubscriberID != "" {
			if err := k.Webhook.Unregister(ctx, st.SubscriberID); err != nil {
				return err
			}
		}
	}
	return m.store.DeactivateTrigger(ctx, uri)
}

// StartRestore restores the active triggers in the background, owned by the
// manager: Close cancels and waits for it. Failures are logged.
func (m *Manager) StartRestore() {
	m.spawn(func() {
		if err := m.Restore(m.ctx); err != nil && m.ctx.Err() == nil {
			m.log.Warn("some triggers could not be restored", "error", err)
		}
	})
}

// Restore restarts every trigger that was active when the server stopped.
func (m *Manager) Restore(ctx context.Context) error {
	ts, err := m.store.Triggers(ctx, true)
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range ts {
		if _, err := m.Start(ctx, t.URI); err != nil {
			errs = append(errs, fmt.Errorf("restore %s: %w", t.URI, err))
		}
	}
	return errors.Join(errs...)
}

// Active lists the active triggers, sorted by URI.
func (m *Manager) Active(ctx context.Context) ([]store.Trigger, error) {
	ts, err := m.store.Triggers(ctx, true)
	sort.Slice(ts, func(i, j int) bool { return ts[i].URI < ts[j].URI })
	return ts, err
}

func (m *Manager) running(uri string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.pollers[uri]
	return ok
}

// startPoller polls at the kind's interval with background priority, so
// interactive tool calls always come first in the budget. A primed poller
// (its first poll already made) waits one interval before polling.
func (m *Manager) startPoller(k Kind, uri string, params url.Values, primed bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.pollers[uri]; ok || m.ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithCancel(m.ctx)
	m.pollers[uri] = cancel
	m.spawnLocked(func() {
		ctx := throttle.WithPriority(ctx, throttle.Background)
		if !primed {
			m.PollOnce(ctx, k, uri, params)
		}
		for clock.Sleep(ctx, m.clock, k.Interval) == nil {
			m.PollOnce(ctx, k, uri, params)
		}
	})
}

// PollOnce runs one poll of a trigger and stores what it found together
// with the new high-water mark, in one transaction. It reports whether the
// poll and its storing succeeded.
func (m *Manager) PollOnce(ctx context.Context, k Kind, uri string, params url.Values) bool {
	t, ok, err := m.store.Trigger(ctx, uri)
	if err != nil || !ok {
		return false
	}
	events, state, err := k.Poller.Poll(ctx, params, t.State)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("trigger poll failed", "trigger", uri, "error", err)
		}
		return false
	}
	added, err := m.store.AppendWithState(ctx, uri, events, state)
	if err != nil {
		m.log.Error("storing trigger events failed", "trigger", uri, "error", err)
		return false
	}
	if len(added) > 0 {
		m.notify(uri)
	}
	return true
}

// pruneEvery is how often retention runs.
const pruneEvery = time.Hour

// StartRetention prunes old events now and then every hour until Close.
func (m *Manager) StartRetention() {
	m.spawn(func() {
		for {
			if n, err := m.store.Prune(m.ctx); err != nil && m.ctx.Err() == nil {
				m.log.Warn("pruning events failed", "error", err)
			} else if n > 0 {
				m.log.Info("pruned old events", "removed", n)
			}
			if clock.Sleep(m.ctx, m.clock, pruneEvery) != nil {
				return
			}
		}
	})
}

// Close stops every poller, the retention and a restore in progress, and
// waits for them.
func (m *Manager) Close() {
	m.mu.Lock()
	m.cancel()
	m.mu.Unlock()
	m.wg.Wait()
}

// spawn runs f in a goroutine owned by the manager, unless it is closed.
func (m *Manager) spawn(f func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.spawnLocked(f)
}

// spawnLocked is spawn with m.mu held: no goroutine starts once Close has
// cancelled the manager, so Close's wait covers every one.
func (m *Manager) spawnLocked(f func()) {
	if m.ctx.Err() == nil {
		m.wg.Go(f)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// keyOf is the dedup key of a payload without a delivery id.
func keyOf(body []byte) string {
	sum := sha256.Sum256(body)
	return "sha256:" + hex.EncodeToString(sum[:])
}
