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
	"hash/fnv"
	"log/slog"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sourcegraph/conc"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/internal/sealed"
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
	// Unregister deletes the subscription; one the upstream no longer knows
	// counts as deleted (no error).
	Unregister(ctx context.Context, subscriberID string) error
	// Exists reports whether the upstream still knows the subscription.
	Exists(ctx context.Context, subscriberID string) (bool, error)
}

// WebhookUpstream is implemented by a Webhook that can say where its
// upstream is: the base URL of the API it registers subscribers with. An
// upstream that is not on loopback cannot post to a loopback, private or
// link-local callback URL, so Start refuses such a callback before any
// upstream call. A Webhook without it (or with "") may use any callback.
type WebhookUpstream interface {
	UpstreamURL() string
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
	// PayloadSchema is the JSON schema of the kind's event data.
	PayloadSchema json.RawMessage
}

// SchemaURI is the URI of the resource that publishes the kind's payload
// schema.
func (k Kind) SchemaURI() string { return k.Base + "/schema" }

// ReadParams are the URI query parameters of a read, not of the trigger:
// after (the event sequence to read from), raw (also return the upstream
// records) and limit.
var ReadParams = []string{"after", "raw", "limit"}

// Template is the RFC 6570 URI template of the kind: its parameters, then
// after and raw.
func (k Kind) Template() string {
	return k.Base + "{?" + strings.Join(append(append([]string(nil), k.Params...), "after", "raw"), ",") + "}"
}

// Scope says whose a trigger is: the principal that started it ("" for the
// server's own, as on stdio) and, when the caller brings its own credential
// for the kind's connector, that credential, which the trigger then polls with.
type Scope struct {
	Owner  string
	Secret string
}

// Manager starts, stops, restores and feeds triggers.
//
// A trigger is stored under a key: its canonical URI for the server's own
// triggers, and the canonical URI plus a fragment naming its scope for a
// principal's (see Key). Another principal's trigger is invisible: the same
// URI names a different trigger for each.
type Manager struct {
	store       store.Backend
	kinds       []Kind
	publicURL   string
	log         *slog.Logger
	notify      func(key string)
	clock       clock.Clock
	scopeOf     func(ctx context.Context, connector string) Scope
	withSecret  func(ctx context.Context, connector, secret string) context.Context
	box         *sealed.Box
	maxPerOwner int

	leases   Leases
	replica  string
	leaseTTL time.Duration

	mu      sync.Mutex
	pollers map[string]pollRun       // the triggers this process polls
	hooking map[string]chan struct{} // webhook triggers being (re)registered or stopped; closed when done
	ctx     context.Context          // ends at Close; every goroutine of the manager runs under it
	cancel  context.CancelFunc
	wg      conc.WaitGroup // owns every goroutine; Close waits for them and re-raises a panic
}

// Options configures a Manager.
type Options struct {
	// PublicURL is where the upstream reaches our webhook listener, e.g. http://127.0.0.1:8765.
	PublicURL string
	Logger    *slog.Logger
	// Notify is called with a trigger's key (see Manager) whenever new events were stored.
	Notify func(key string)
	// Clock paces polling and retention; nil means the real clock.
	Clock clock.Clock
	// ScopeOf tells the scope of a request for a connector; nil means every
	// trigger is the server's own.
	ScopeOf func(ctx context.Context, connector string) Scope
	// WithSecret puts a caller's credential into a poll's context, for the
	// poller's client of that connector. Needed with ScopeOf.
	WithSecret func(ctx context.Context, connector, secret string) context.Context
	// Box seals callers' credentials at rest (the server's state key);
	// without it, a trigger with a caller's own credential is refused.
	Box *sealed.Box
	// MaxPerOwner caps the active triggers of one principal; default 20.
	// The server's own triggers are not capped.
	MaxPerOwner int
	// Leases, in cluster mode, lets one replica poll each trigger (see
	// Leases). Nil: this process polls every active trigger.
	Leases Leases
	// ReplicaID names this replica in leases; default random.
	ReplicaID string
	// LeaseTTL is how long a lease lasts unless renewed (default
	// DefaultLeaseTTL): a replica that dies hands its triggers over within it.
	LeaseTTL time.Duration
}

// Leases decides which replica of a cluster polls a trigger
// (internal/store/pgstore implements it on the shared database). A poll runs
// only under this replica's lease, and its events and state are stored only
// while that lease still holds (store.WithFence), so a replica that lost
// its lease cannot write stale state.
type Leases interface {
	// HoldLease claims or renews the trigger's lease for owner until ttl
	// from now; held is false while another owner's lease is current. The
	// epoch grows whenever the lease changes hands.
	HoldLease(ctx context.Context, uri, owner string, ttl time.Duration) (epoch int64, held bool, err error)
	// ReleaseLease gives the lease up, so another replica may take it at once.
	ReleaseLease(ctx context.Context, uri, owner string, epoch int64) error
}

// DefaultLeaseTTL is the default lifetime of a trigger lease; a replica
// renews its leases every third of it.
const DefaultLeaseTTL = 30 * time.Second

// pollRun is a poller this process runs, and the lease epoch it polls
// under (0 without leases).
type pollRun struct {
	cancel context.CancelFunc
	epoch  int64
}

// DefaultMaxPerOwner is the default cap on one principal's active triggers.
const DefaultMaxPerOwner = 20

// Errors of Start a caller can act on.
var (
	ErrNeedsStateKey   = errors.New("a trigger that polls with your own credential needs the server's state key (COSELL_STATE_KEY), which is not set; ask the operator, or call without your own credential header")
	ErrTooManyTriggers = errors.New("too many active triggers")
	// ErrCallbackUnreachable: the upstream of a webhook trigger could not
	// post to the server's webhook callback URL (--public-url).
	ErrCallbackUnreachable = errors.New("the upstream cannot reach this server's webhook callback URL")
)

// NewManager returns a manager over the store for the given kinds.
func NewManager(st store.Backend, kinds []Kind, opts Options) *Manager {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Notify == nil {
		opts.Notify = func(string) {}
	}
	if opts.ScopeOf == nil {
		opts.ScopeOf = func(context.Context, string) Scope { return Scope{} }
	}
	if opts.WithSecret == nil {
		opts.WithSecret = func(ctx context.Context, _, _ string) context.Context { return ctx }
	}
	if opts.MaxPerOwner <= 0 {
		opts.MaxPerOwner = DefaultMaxPerOwner
	}
	if opts.ReplicaID == "" {
		opts.ReplicaID = "replica-" + randomHex(8)
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = DefaultLeaseTTL
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{store: st, kinds: kinds, publicURL: strings.TrimRight(opts.PublicURL, "/"), log: opts.Logger,
		notify: opts.Notify, clock: clock.OrReal(opts.Clock), scopeOf: opts.ScopeOf, withSecret: opts.WithSecret,
		box: opts.Box, maxPerOwner: opts.MaxPerOwner, leases: opts.Leases, replica: opts.ReplicaID, leaseTTL: opts.LeaseTTL,
		pollers: map[string]pollRun{}, hooking: map[string]chan struct{}{},
		ctx: ctx, cancel: cancel}
}

// Kinds returns the registered kinds.
func (m *Manager) Kinds() []Kind { return m.kinds }

// Store returns the event store.
func (m *Manager) Store() store.Backend { return m.store }

// ErrUnknownTrigger is returned for a URI no kind accepts, or with wrong parameters.
var ErrUnknownTrigger = errors.New("not a valid trigger URI")

// Connector is the connector a kind belongs to, e.g. "pipedrive".
func (k Kind) Connector() string {
	c, _, _ := strings.Cut(k.Name, ".")
	return c
}

// Key is the store key of a trigger of the canonical URI in a scope: the
// URI itself for the server's own, else the URI with a fragment that hashes
// the owner and the credential (never the credential itself).
func Key(canonical, connector string, sc Scope) string {
	if sc.Owner == "" && sc.Secret == "" {
		return canonical
	}
	sum := sha256.Sum256([]byte(sc.Owner + "\x00" + connector + "\x00" + sc.Secret))
	return canonical + "#" + hex.EncodeToString(sum[:8])
}

// PublicURI is the URI a caller knows a trigger by: its key without the scope.
func PublicURI(key string) string {
	uri, _, _ := strings.Cut(key, "#")
	return uri
}

// Owner is the principal of a request ("" for the server), as ScopeOf says.
func (m *Manager) Owner(ctx context.Context) string { return m.scopeOf(ctx, "").Owner }

// ResolveFor resolves a URI as Resolve does, and returns the key of the
// caller's trigger of that URI.
func (m *Manager) ResolveFor(ctx context.Context, raw string) (k Kind, params url.Values, key string, sc Scope, err error) {
	k, params, canonical, err := m.Resolve(raw)
	if err != nil {
		return Kind{}, nil, "", Scope{}, err
	}
	sc = m.scopeOf(ctx, k.Connector())
	return k, params, Key(canonical, k.Connector(), sc), sc, nil
}

// Resolve parses a trigger URI into its kind, its parameters and its
// canonical form (parameters sorted, ReadParams removed).
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
		for _, name := range ReadParams {
			q.Del(name)
		}
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
	// ID and Secret make the trigger's capability path; they stay the same
	// when the subscriber is re-registered, so a delivery to the old or the
	// new subscriber's URL finds the trigger.
	ID           string `json:"id"`
	Secret       string `json:"secret"`
	SubscriberID string `json:"subscriber_id"`
	// CallbackURL is the URL SubscriberID was registered with. It is empty in
	// state written before it was recorded: unknown, so the subscriber is
	// replaced at the next start.
	CallbackURL string `json:"callback_url,omitempty"`
	// Stale lists replaced subscribers whose deletion upstream has not
	// succeeded yet; it is retried at every start and at Stop.
	Stale []string `json:"stale_subscriber_ids,omitempty"`
}

// Start makes the caller's trigger of the URI active: a poller starts
// polling, a webhook registers its upstream subscriber. Starting an active
// poller is a no-op; starting an active webhook trigger checks that its
// subscriber still exists and posts to the current callback URL, and
// replaces it if not. A callback URL the upstream cannot reach is refused
// before any upstream call (ErrCallbackUnreachable). It returns the
// trigger's key.
//
// A new polling trigger makes its first poll (the one that marks "now")
// before Start returns, so a record created after Start returns is an event
// of the trigger. A restored one polls at once in the background to catch up.
// A caller's own credential is stored sealed with the state key, and the
// trigger polls with it; a principal has at most MaxPerOwner active triggers.
func (m *Manager) Start(ctx context.Context, raw string) (string, error) {
	k, params, key, sc, err := m.ResolveFor(ctx, raw)
	if err != nil {
		return "", err
	}
	existing, ok, err := m.store.Trigger(ctx, key)
	if err != nil {
		return "", err
	}
	if ok && existing.Active && m.running(key) {
		return key, nil
	}
	var cred []byte
	if sc.Secret != "" {
		if m.box == nil {
			return "", ErrNeedsStateKey
		}
		cred = m.box.Seal([]byte(sc.Secret), key)
	}
	if sc.Owner != "" && !(ok && existing.Active) {
		if err := m.checkCap(ctx, sc.Owner); err != nil {
			return "", err
		}
	}
	return key, m.start(ctx, k, params, store.Trigger{URI: key, Owner: sc.Owner, Credential: cred}, !ok || len(existing.State) == 0)
}

// CanStart tells, without starting anything, whether Start would refuse
// the caller's trigger of the URI for its scope: a caller's own credential
// without a state key, or a principal at its cap.
func (m *Manager) CanStart(ctx context.Context, raw string) error {
	k, _, key, sc, err := m.ResolveFor(ctx, raw)
	if err != nil {
		return err
	}
	if k.Webhook != nil {
		if err := m.checkCallback(k); err != nil {
			return err
		}
	}
	if sc.Secret != "" && m.box == nil {
		return ErrNeedsStateKey
	}
	if sc.Owner == "" {
		return nil
	}
	if t, ok, err := m.store.Trigger(ctx, key); err != nil || (ok && t.Active) {
		return err
	}
	return m.checkCap(ctx, sc.Owner)
}

// checkCap refuses a new trigger of an owner at its cap.
func (m *Manager) checkCap(ctx context.Context, owner string) error {
	n, err := m.activeOf(ctx, owner)
	if err == nil && n >= m.maxPerOwner {
		err = fmt.Errorf("%w: you have %d active triggers, the most this server allows (--max-triggers-per-caller); stop one with trigger_stop first", ErrTooManyTriggers, n)
	}
	return err
}

// activeOf counts the active triggers of an owner.
func (m *Manager) activeOf(ctx context.Context, owner string) (int, error) {
	ts, err := m.store.Triggers(ctx, true)
	n := 0
	for _, t := range ts {
		if t.Owner == owner {
			n++
		}
	}
	return n, err
}

// start stores t (key, owner, sealed credential) as active and runs it;
// fresh says whether the poller has never polled. A webhook trigger reads
// its stored state itself (see startWebhook).
func (m *Manager) start(ctx context.Context, k Kind, params url.Values, t store.Trigger, fresh bool) error {
	key := t.URI
	pj, _ := json.Marshal(params)
	t.Kind, t.Params, t.Active = k.Name, pj, true
	if k.Webhook != nil {
		return m.startWebhook(ctx, k, params, t)
	}
	if err := m.store.UpsertTrigger(ctx, t); err != nil {
		return err
	}
	if k.Poller != nil {
		var fence store.Fence
		if m.leases != nil {
			f, held, err := m.hold(ctx, key)
			if err != nil || !held {
				return err // another replica polls it (a lease not had now is retried by the next balance)
			}
			fence, ctx = f, store.WithFence(ctx, f)
		}
		primed := false
		if fresh {
			// The first poll of a new trigger marks "now" and spends one call.
			primed = m.PollOnce(throttle.WithPriority(ctx, throttle.Background), k, key, params)
		}
		m.startPoller(k, key, params, primed, fence)
	}
	return nil
}

// startWebhook stores t as active with a live upstream subscriber that
// posts to the current callback URL. It refuses a callback URL the upstream
// cannot reach before any upstream call, and runs one (re)registration or
// Stop of a trigger at a time, so concurrent starts register one subscriber.
func (m *Manager) startWebhook(ctx context.Context, k Kind, params url.Values, t store.Trigger) error {
	if err := m.checkCallback(k); err != nil {
		return err
	}
	unlock, err := m.lockHook(ctx, t.URI)
	if err != nil {
		return err
	}
	defer unlock()
	// The state as it is now, not as the caller read it before the lock.
	var state json.RawMessage
	if cur, ok, err := m.store.Trigger(ctx, t.URI); err != nil {
		return err
	} else if ok {
		state = cur.State
	}
	st, registered, err := m.ensureSubscriber(ctx, k, params, state)
	if err != nil {
		return err
	}
	t.State, _ = json.Marshal(st)
	// Stored before a replaced subscriber is deleted: the store knows every
	// subscriber that exists upstream at every moment.
	if err := m.store.UpsertTrigger(ctx, t); err != nil {
		if registered {
			if uerr := k.Webhook.Unregister(ctx, st.SubscriberID); uerr != nil {
				m.log.Warn("deleting a webhook subscriber that could not be stored failed", "trigger", PublicURI(t.URI), "subscriber", st.SubscriberID, "error", uerr)
			}
		}
		return err
	}
	m.dropStale(ctx, k, t.URI, st)
	return nil
}

// ensureSubscriber returns the webhook state with a subscriber that the
// upstream knows and that posts to the current callback URL, and whether it
// registered a new one. A subscriber registered with another callback URL
// (or an unknown one) is replaced: the new one is registered first, and the
// old one joins Stale, to be deleted once the new state is stored, so no
// event raised in between is lost. The trigger's id and secret stay.
func (m *Manager) ensureSubscriber(ctx context.Context, k Kind, params url.Values, state json.RawMessage) (webhookState, bool, error) {
	var st webhookState
	if len(state) > 0 {
		_ = json.Unmarshal(state, &st)
	}
	if st.ID == "" {
		st.ID, st.Secret = randomHex(8), randomHex(32)
	}
	callback := m.CallbackURL(k, st)
	// A subscriber known to post elsewhere is replaced without asking; one
	// that may post here is kept if the upstream still has it, and one whose
	// URL is unknown is asked about so a vanished one is not deleted.
	if st.SubscriberID != "" && (st.CallbackURL == callback || st.CallbackURL == "") {
		ok, err := k.Webhook.Exists(ctx, st.SubscriberID)
		switch {
		case err == nil && ok && st.CallbackURL == callback:
			return st, false, nil
		case err == nil && !ok:
			st.SubscriberID = "" // gone upstream: nothing to delete
		case err != nil && ctx.Err() != nil:
			return st, false, err
		}
		// Otherwise (its URL unknown, or the upstream did not answer) it is
		// replaced and then deleted; deleting one that is gone is harmless.
	}
	sub, err := k.Webhook.Register(ctx, params, callback)
	if err != nil {
		return st, false, err
	}
	if st.SubscriberID != "" && st.SubscriberID != sub && !contains(st.Stale, st.SubscriberID) {
		st.Stale = append(st.Stale, st.SubscriberID)
	}
	st.SubscriberID, st.CallbackURL = sub, callback
	return st, true, nil
}

// dropStale deletes a webhook trigger's replaced subscribers upstream and
// stores which could not be deleted (they are retried at the next start and
// at Stop). A failure is logged, not returned: the trigger's own subscriber
// is live.
func (m *Manager) dropStale(ctx context.Context, k Kind, key string, st webhookState) {
	if len(st.Stale) == 0 {
		return
	}
	var left []string
	for _, id := range st.Stale {
		if err := k.Webhook.Unregister(ctx, id); err != nil {
			if ctx.Err() == nil {
				m.log.Warn("deleting a replaced webhook subscriber failed; retried at the next start", "trigger", PublicURI(key), "subscriber", id, "error", err)
			}
			left = append(left, id)
		}
	}
	if len(left) == len(st.Stale) {
		return
	}
	st.Stale = left
	state, _ := json.Marshal(st)
	if err := m.store.SetTriggerState(ctx, key, state); err != nil {
		m.log.Warn("storing a webhook trigger's state failed", "trigger", PublicURI(key), "error", err)
	}
}

// lockHook waits until no other start or stop of the webhook trigger key
// runs, or ctx ends, and returns its unlock.
func (m *Manager) lockHook(ctx context.Context, key string) (func(), error) {
	for {
		m.mu.Lock()
		busy, ok := m.hooking[key]
		if !ok {
			mine := make(chan struct{})
			m.hooking[key] = mine
			m.mu.Unlock()
			return func() {
				m.mu.Lock()
				delete(m.hooking, key)
				m.mu.Unlock()
				close(mine)
			}, nil
		}
		m.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// checkCallback refuses a callback URL the kind's upstream cannot reach:
// none at all, or a loopback, private or link-local one while the upstream
// (as its Webhook tells, see WebhookUpstream) is not on loopback itself. It
// names only the public URL, never a trigger's capability path.
func (m *Manager) checkCallback(k Kind) error {
	if m.publicURL == "" {
		return fmt.Errorf("%w: webhook triggers need the listener's public URL (--public-url, COSELL_PUBLIC_URL)", ErrCallbackUnreachable)
	}
	up, ok := k.Webhook.(WebhookUpstream)
	if !ok {
		return nil
	}
	upstream := up.UpstreamURL()
	if upstream == "" || isLoopbackURL(upstream) {
		return nil
	}
	if !isInternalURL(m.publicURL) {
		return nil
	}
	host := upstream
	if u, err := url.Parse(upstream); err == nil && u.Host != "" {
		host = u.Host
	}
	return fmt.Errorf("%w: %s triggers are called back by %s, which cannot post to %s (a loopback, private or link-local address); "+
		"start the server with --public-url (COSELL_PUBLIC_URL) set to a URL it can reach that forwards to the webhook listener, e.g. https://mcp.example.com",
		ErrCallbackUnreachable, k.Connector(), host, m.publicURL)
}

// isLoopbackURL tells whether a URL's host is this machine: localhost (or a
// name under .localhost) or a loopback address.
func isLoopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	h := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.Unmap().IsLoopback()
}

// isInternalURL tells whether a URL cannot be reached from another network:
// loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7), link-local
// (169.254/16, fe80::/10) or unspecified, or not an absolute URL at all.
// A name is judged by itself, not resolved.
func isInternalURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return true
	}
	if isLoopbackURL(raw) {
		return true
	}
	ip, err := netip.ParseAddr(u.Hostname())
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	return ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsUnspecified()
}

// CallbackURL is the capability URL the upstream posts events of one trigger to.
func (m *Manager) CallbackURL(k Kind, st webhookState) string {
	provider, _, _ := strings.Cut(k.Name, ".")
	return fmt.Sprintf("%s/webhooks/%s/%s/%s", m.publicURL, provider, st.ID, st.Secret)
}

// Stop deactivates the caller's trigger of the URI: its poller stops, its
// upstream subscriber is deleted. Its events stay readable until retention
// removes them.
func (m *Manager) Stop(ctx context.Context, raw string) error {
	k, _, key, _, err := m.ResolveFor(ctx, raw)
	if err != nil {
		return err
	}
	if k.Webhook != nil {
		unlock, err := m.lockHook(ctx, key)
		if err != nil {
			return err
		}
		defer unlock()
	}
	t, ok, err := m.store.Trigger(ctx, key)
	if err != nil || !ok {
		return err
	}
	m.stopPoller(key, true)
	if k.Webhook != nil {
		var st webhookState
		_ = json.Unmarshal(t.State, &st)
		for _, id := range append(slices.Clone(st.Stale), st.SubscriberID) {
			if id == "" {
				continue
			}
			if err := k.Webhook.Unregister(ctx, id); err != nil {
				return err
			}
		}
	}
	return m.store.DeactivateTrigger(ctx, key)
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
// A webhook trigger whose subscriber was registered with another callback
// URL (the listener moved, e.g. a new random port) gets a new subscriber
// with the current URL, and the old one is deleted after it. A webhook
// trigger whose upstream cannot reach the current callback URL (see
// ErrCallbackUnreachable) is left as stored — active, its subscriber
// untouched, no upstream call made — and reported in the error, so that a
// restart with a reachable --public-url restores it; the other triggers are
// restored all the same.
func (m *Manager) Restore(ctx context.Context) error {
	ts, err := m.store.Triggers(ctx, true)
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range ts {
		if err := m.restore(ctx, t); err != nil {
			errs = append(errs, fmt.Errorf("restore %s: %w", PublicURI(t.URI), err))
		}
	}
	return errors.Join(errs...)
}

// restore restarts one stored trigger under its own key and scope.
func (m *Manager) restore(ctx context.Context, t store.Trigger) error {
	k, params, _, err := m.Resolve(PublicURI(t.URI))
	if err != nil {
		return err
	}
	if m.running(t.URI) {
		return nil
	}
	return m.start(ctx, k, params, store.Trigger{URI: t.URI, Owner: t.Owner, Credential: t.Credential}, len(t.State) == 0)
}

// Active lists the caller's active triggers, sorted by key.
func (m *Manager) Active(ctx context.Context) ([]store.Trigger, error) {
	ts, err := m.store.Triggers(ctx, true)
	owner := m.Owner(ctx)
	mine := ts[:0]
	for _, t := range ts {
		if t.Owner == owner {
			mine = append(mine, t)
		}
	}
	sort.Slice(mine, func(i, j int) bool { return mine[i].URI < mine[j].URI })
	return mine, err
}

// ActiveAll lists every active trigger of every principal (for the
// operator's status), sorted by key.
func (m *Manager) ActiveAll(ctx context.Context) ([]store.Trigger, error) {
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

// stopPoller stops this process's poller of a trigger, if it runs one, and
// with release gives its lease up.
func (m *Manager) stopPoller(uri string, release bool) {
	m.mu.Lock()
	run, ok := m.pollers[uri]
	if ok {
		run.cancel()
		delete(m.pollers, uri)
	}
	m.mu.Unlock()
	if ok && release && m.leases != nil {
		ctx, cancel := context.WithTimeout(context.Background(), leaseCallTimeout)
		defer cancel()
		if err := m.leases.ReleaseLease(ctx, uri, m.replica, run.epoch); err != nil {
			m.log.Debug("trigger lease not released", "trigger", PublicURI(uri), "error", err)
		}
	}
}

// startPoller polls at the kind's interval with background priority, so
// interactive tool calls always come first in the budget. A primed poller
// (its first poll already made) waits one interval before polling. In
// cluster mode it polls under fence, its lease.
func (m *Manager) startPoller(k Kind, uri string, params url.Values, primed bool, fence store.Fence) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.pollers[uri]; ok || m.ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithCancel(m.ctx)
	m.pollers[uri] = pollRun{cancel: cancel, epoch: fence.Epoch}
	if m.leases != nil {
		ctx = store.WithFence(ctx, fence)
	}
	m.spawnLocked(func() {
		ctx := throttle.WithPriority(ctx, throttle.Background)
		if !primed {
			// A restored poller catches up at once, but many restored together
			// spread their first polls over one interval (by key), so a restart
			// does not spend a connection's whole budget in one burst.
			if clock.Sleep(ctx, m.clock, spread(uri, k.Interval)) != nil {
				return
			}
			m.PollOnce(ctx, k, uri, params)
		}
		for clock.Sleep(ctx, m.clock, k.Interval) == nil {
			m.PollOnce(ctx, k, uri, params)
		}
	})
}

// spread is a trigger's offset in [0, interval), fixed by its key.
func spread(key string, interval time.Duration) time.Duration {
	if interval <= 0 {
		return 0
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	return time.Duration(h.Sum64() % uint64(interval))
}

// PollOnce runs one poll of a trigger and stores what it found together
// with the new high-water mark, in one transaction. It reports whether the
// poll and its storing succeeded.
func (m *Manager) PollOnce(ctx context.Context, k Kind, uri string, params url.Values) bool {
	t, ok, err := m.store.Trigger(ctx, uri)
	if err != nil || !ok || !t.Active {
		return false // stopped, perhaps through another replica
	}
	if len(t.Credential) > 0 {
		secret, err := m.openCredential(t)
		if err != nil {
			m.log.Warn("trigger not polled: its caller's credential cannot be opened", "trigger", PublicURI(uri), "error", err)
			return false
		}
		ctx = m.withSecret(ctx, k.Connector(), secret)
	}
	events, state, err := k.Poller.Poll(ctx, params, t.State)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("trigger poll failed", "trigger", uri, "error", err)
		}
		return false
	}
	added, err := m.store.AppendWithState(ctx, uri, events, state)
	if errors.Is(err, store.ErrFenced) {
		// Another replica holds the lease now: it polls from what was stored.
		m.log.Info("trigger lease lost; another replica polls it", "trigger", PublicURI(uri))
		m.stopPoller(uri, false)
		return false
	}
	if err != nil {
		m.log.Error("storing trigger events failed", "trigger", uri, "error", err)
		return false
	}
	if len(added) > 0 {
		m.notify(uri)
	}
	return true
}

// openCredential unseals the caller's credential a trigger polls with.
func (m *Manager) openCredential(t store.Trigger) (string, error) {
	if m.box == nil {
		return "", ErrNeedsStateKey
	}
	b, err := m.box.Open(t.Credential, t.URI)
	return string(b), err
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
// waits for them; in cluster mode it gives its leases up, so other replicas
// take its triggers over at once.
func (m *Manager) Close() {
	m.mu.Lock()
	m.cancel()
	held := m.pollers
	m.pollers = map[string]pollRun{}
	m.mu.Unlock()
	m.wg.Wait()
	if m.leases == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), leaseCallTimeout)
	defer cancel()
	for uri, run := range held {
		_ = m.leases.ReleaseLease(ctx, uri, m.replica, run.epoch)
	}
}

// leaseCallTimeout bounds a lease call nobody waits on.
const leaseCallTimeout = 5 * time.Second

// hold claims or renews this replica's lease of a trigger.
func (m *Manager) hold(ctx context.Context, uri string) (store.Fence, bool, error) {
	epoch, held, err := m.leases.HoldLease(ctx, uri, m.replica, m.leaseTTL)
	return store.Fence{Owner: m.replica, Epoch: epoch}, held, err
}

// StartLeases, in cluster mode, keeps this replica's share of the polling
// until Close: every third of the lease period it renews the leases of the
// triggers it polls, takes over those whose lease expired (a replica died),
// and stops polling triggers that were stopped (through any replica) or
// whose lease it lost. Without Leases it does nothing.
func (m *Manager) StartLeases() {
	if m.leases == nil {
		return
	}
	m.spawn(func() {
		for {
			m.balance(m.ctx)
			if clock.Sleep(m.ctx, m.clock, m.leaseTTL/3) != nil {
				return
			}
		}
	})
}

// balance is one round of StartLeases.
func (m *Manager) balance(ctx context.Context) {
	ts, err := m.store.Triggers(ctx, true)
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("trigger leases not renewed: the store cannot be read", "error", err)
		}
		return
	}
	active := map[string]bool{}
	for _, t := range ts {
		k, params, _, err := m.Resolve(PublicURI(t.URI))
		if err != nil || k.Poller == nil {
			continue
		}
		active[t.URI] = true
		fence, held, err := m.hold(ctx, t.URI)
		if err != nil {
			continue // unchanged: a lease that expires meanwhile fences this replica's writes
		}
		m.mu.Lock()
		run, running := m.pollers[t.URI]
		m.mu.Unlock()
		switch {
		case held && running && run.epoch != fence.Epoch:
			m.stopPoller(t.URI, false) // polled under an older lease: start afresh under this one
			m.startPoller(k, t.URI, params, false, fence)
		case held && !running:
			m.startPoller(k, t.URI, params, false, fence)
		case !held && running:
			m.stopPoller(t.URI, false)
		}
	}
	m.mu.Lock()
	var gone []string
	for uri := range m.pollers {
		if !active[uri] {
			gone = append(gone, uri)
		}
	}
	m.mu.Unlock()
	for _, uri := range gone {
		m.stopPoller(uri, true) // stopped through another replica
	}
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
