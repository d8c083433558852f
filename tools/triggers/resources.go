// Package triggers exposes connector triggers as MCP resources (one
// template per trigger), tracks which sessions subscribed to which, and
// offers tools for clients without resource support.
package triggers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/cosell-mcp/cosell-mcp/internal/store"
	"github.com/cosell-mcp/cosell-mcp/internal/triggers"
	"github.com/cosell-mcp/cosell-mcp/tools"
)

// Resources tracks subscriptions (mcp-go acknowledges but does not keep
// them) and turns new events into notifications/resources/updated.
type Resources struct {
	manager *triggers.Manager
	log     *slog.Logger
	access  Access

	mu     sync.Mutex
	srv    *server.MCPServer
	subs   map[string]map[string]string // trigger key → session id → URI as subscribed
	shared SharedSubscriptions          // cluster mode: the subscriptions of every replica's sessions
	local  map[string]string            // cluster mode: shared.HashOf(session id) → id, of the sessions registered here
}

// SharedSubscriptions keeps the subscriptions where every replica of a
// cluster sees them, so that whichever replica holds a session's stream
// tells it of new events, whichever replica took its subscription and
// whichever stored the events.
type SharedSubscriptions interface {
	Subscribe(ctx context.Context, sessionID, triggerKey, uri string) error
	Unsubscribe(ctx context.Context, sessionID, triggerKey string) error
	// Subscribers returns the subscribed sessions, by HashOf of their ids,
	// with the URI each subscribed with.
	Subscribers(ctx context.Context, triggerKey string) (map[string]string, error)
	// HashOf is the name Subscribers gives a session id.
	HashOf(sessionID string) string
}

// ShareSubscriptions makes the subscriptions cluster-wide; call it before
// the server serves.
func (r *Resources) ShareSubscriptions(s SharedSubscriptions) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.shared, r.local = s, map[string]string{}
}

// Access is the server's policy (--toolsets, --read-only) as it applies to
// triggers, through resources and tools alike: a kind is available when its
// connector's toolset is enabled (all are when no toolset is named, or when
// only the triggers toolset is); starting or stopping one is refused
// read-only, as trigger_start is (a webhook subscription is an upstream write,
// and a trigger persists server state).
type Access struct {
	Toolsets []string
	ReadOnly bool
}

// Available reports whether a kind may be listed and read, and if not, why.
func (a Access) Available(k triggers.Kind) error {
	if len(a.Toolsets) == 0 || slices.Contains(a.Toolsets, k.Connector()) {
		return nil
	}
	onlyTriggers := true
	for _, ts := range a.Toolsets {
		if ts != Toolset && ts != tools.ToolsetServer {
			onlyTriggers = false
		}
	}
	if onlyTriggers {
		return nil
	}
	return &tools.Error{Code: tools.CodeForbidden, Message: fmt.Sprintf("trigger %s belongs to toolset %q, which this server does not enable (--toolsets %s)",
		k.Base, k.Connector(), strings.Join(a.Toolsets, ","))}
}

// MayStart reports whether a kind may be started (or stopped), and if not, why.
func (a Access) MayStart(k triggers.Kind) error {
	if err := a.Available(k); err != nil {
		return err
	}
	if a.ReadOnly {
		return &tools.Error{Code: tools.CodeForbidden, Message: fmt.Sprintf("starting trigger %s changes state and this server runs read-only (--read-only); only triggers already active can be read", k.Base)}
	}
	return nil
}

// SetAccess applies the server's policy to trigger resources; call it
// before the server serves.
func (r *Resources) SetAccess(a Access) { r.access = a }

// check applies the policy to a trigger URI.
func (r *Resources) check(raw string, start bool) error {
	k, _, _, err := r.manager.Resolve(raw)
	if err != nil {
		return err
	}
	if start {
		return r.access.MayStart(k)
	}
	return r.access.Available(k)
}

// checkStart is check for a start, plus the manager's refusals for the
// caller's scope (no state key for its own credential, its cap reached).
func (r *Resources) checkStart(ctx context.Context, raw string) error {
	if err := r.check(raw, true); err != nil {
		return err
	}
	return r.manager.CanStart(ctx, raw)
}

// policyHook refuses, before mcp-go handles them, resource requests the
// policy forbids: subscribing (resources/subscribe, subscriptions/listen)
// starts a trigger; reading needs the kind to be available.
func (r *Resources) policyHook(ctx context.Context, _ any, message any) error {
	raw, ok := message.(json.RawMessage)
	if !ok {
		return nil
	}
	var head struct {
		Method string `json:"method"`
	}
	if json.Unmarshal(raw, &head) != nil {
		return nil
	}
	var uris []string
	start := true
	switch head.Method {
	case string(mcp.MethodResourcesSubscribe), string(mcp.MethodResourcesRead):
		var req struct {
			Params struct {
				URI string `json:"uri"`
			} `json:"params"`
		}
		if json.Unmarshal(raw, &req) != nil {
			return nil
		}
		uris, start = []string{req.Params.URI}, head.Method == string(mcp.MethodResourcesSubscribe)
	case string(mcp.MethodSubscriptionsListen):
		var req mcp.SubscriptionsListenRequest
		if json.Unmarshal(raw, &req) != nil {
			return nil
		}
		uris = req.Params.Notifications.ResourceSubscriptions
	default:
		return nil
	}
	for _, uri := range uris {
		check := func() error { return r.check(uri, false) }
		if start {
			check = func() error { return r.checkStart(ctx, uri) }
		}
		if err := check(); err != nil {
			if errors.Is(err, triggers.ErrUnknownTrigger) {
				continue // not a trigger: mcp-go answers it as for any unknown resource
			}
			var te *tools.Error
			if errors.As(err, &te) {
				return errors.New(te.Message)
			}
			return err
		}
	}
	return nil
}

// NewResources returns the subscription tracker; call Hook before the
// server is built and Attach after.
func NewResources(log *slog.Logger) *Resources {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Resources{log: log, subs: map[string]map[string]string{}}
}

// SetManager connects the trigger manager (whose Notify should call r.Notify).
func (r *Resources) SetManager(m *triggers.Manager) { r.manager = m }

// Hook adds the subscription hooks to the server's hooks.
func (r *Resources) Hook(h *server.Hooks) {
	h.AddOnRequestInitialization(r.policyHook)
	h.AddAfterSubscribe(func(ctx context.Context, _ any, req *mcp.SubscribeRequest, _ *mcp.EmptyResult) {
		r.subscribe(ctx, req.Params.URI)
	})
	h.AddAfterUnsubscribe(func(ctx context.Context, _ any, req *mcp.UnsubscribeRequest, _ *mcp.EmptyResult) {
		r.unsubscribe(ctx, req.Params.URI)
	})
	// Protocol 2026-07-28 replaces resources/subscribe with subscriptions/listen:
	// its resource subscriptions start triggers the same way, for as long
	// as the stream is open.
	h.AddBeforeSubscriptionsListen(func(ctx context.Context, _ any, req *mcp.SubscriptionsListenRequest) {
		for _, uri := range req.Params.Notifications.ResourceSubscriptions {
			r.subscribe(ctx, uri)
		}
	})
	h.AddAfterSubscriptionsListen(func(ctx context.Context, _ any, req *mcp.SubscriptionsListenRequest, _ *mcp.SubscriptionsListenResult) {
		for _, uri := range req.Params.Notifications.ResourceSubscriptions {
			r.unsubscribe(ctx, uri)
		}
	})
	h.AddOnRegisterSession(func(_ context.Context, s server.ClientSession) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.shared != nil {
			r.local[r.shared.HashOf(s.SessionID())] = s.SessionID()
		}
	})
	h.AddOnUnregisterSession(func(_ context.Context, s server.ClientSession) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.shared != nil {
			// Only this replica forgets it: the session (and its shared
			// subscriptions) may go on elsewhere.
			delete(r.local, r.shared.HashOf(s.SessionID()))
		}
		for uri, sessions := range r.subs {
			delete(sessions, s.SessionID())
			if len(sessions) == 0 {
				delete(r.subs, uri)
			}
		}
	})
	h.AddAfterListResourceTemplates(func(_ context.Context, _ any, _ *mcp.ListResourceTemplatesRequest, res *mcp.ListResourceTemplatesResult) {
		deprecated := map[string]bool{}
		for _, k := range r.manager.Kinds() {
			deprecated[k.Template()] = k.Deprecated || r.access.Available(k) != nil
		}
		kept := res.ResourceTemplates[:0]
		for _, t := range res.ResourceTemplates {
			if t.URITemplate == nil || !deprecated[t.URITemplate.Raw()] {
				kept = append(kept, t)
			}
		}
		res.ResourceTemplates = kept
	})
	h.AddAfterListResources(func(_ context.Context, _ any, _ *mcp.ListResourcesRequest, res *mcp.ListResourcesResult) {
		hidden := map[string]bool{}
		for _, k := range r.manager.Kinds() {
			hidden[k.SchemaURI()] = r.access.Available(k) != nil
		}
		kept := res.Resources[:0]
		for _, rs := range res.Resources {
			if !hidden[rs.URI] {
				kept = append(kept, rs)
			}
		}
		res.Resources = kept
	})
}

// Attach registers one resource template per trigger kind on the server.
func (r *Resources) Attach(srv *server.MCPServer) {
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	for _, k := range r.manager.Kinds() {
		desc := k.Description + " Read returns events after ?after=SEQ (or after this session's cursor), with ?raw=true their upstream records too; subscribe to be told of new ones."
		if len(k.PayloadSchema) > 0 {
			desc += " Event data schema: " + k.SchemaURI() + "."
		}
		tmpl := mcp.NewResourceTemplate(k.Template(), k.Title, mcp.WithTemplateDescription(desc), mcp.WithTemplateMIMEType("application/json"))
		srv.AddResourceTemplate(tmpl, r.read)
		if len(k.PayloadSchema) > 0 && !k.Deprecated {
			schema := string(k.PayloadSchema)
			res := mcp.NewResource(k.SchemaURI(), "Event data of "+k.Title,
				mcp.WithResourceDescription("JSON schema of the data of each event of "+k.Base+"."), mcp.WithMIMEType(schemaMIME))
			srv.AddResource(res, func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
				return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, MIMEType: schemaMIME, Text: schema}}, nil
			})
		}
	}
}

// schemaMIME is the media type of the payload schema resources.
const schemaMIME = "application/schema+json"

func sessionID(ctx context.Context) string {
	if s := server.ClientSessionFromContext(ctx); s != nil {
		return s.SessionID()
	}
	return ""
}

func (r *Resources) subscribe(ctx context.Context, raw string) {
	if err := r.check(raw, true); err != nil {
		r.log.Warn("subscribe: trigger not started", "uri", raw, "error", err)
		return
	}
	key, err := r.manager.Start(ctx, raw)
	if err != nil {
		r.log.Warn("subscribe: trigger not started", "uri", raw, "error", err)
		return
	}
	sid := sessionID(ctx)
	if sid == "" {
		return
	}
	r.mu.Lock()
	if r.subs[key] == nil {
		r.subs[key] = map[string]string{}
	}
	r.subs[key][sid] = raw
	shared := r.shared
	r.mu.Unlock()
	if shared != nil {
		if err := shared.Subscribe(ctx, sid, key, raw); err != nil {
			r.log.Warn("subscription not shared with the other replicas", "uri", raw, "error", err)
		}
	}
}

func (r *Resources) unsubscribe(ctx context.Context, raw string) {
	_, _, key, _, err := r.manager.ResolveFor(ctx, raw)
	if err != nil {
		return
	}
	r.mu.Lock()
	delete(r.subs[key], sessionID(ctx))
	shared := r.shared
	r.mu.Unlock()
	if shared != nil {
		if err := shared.Unsubscribe(ctx, sessionID(ctx), key); err != nil {
			r.log.Warn("unsubscription not shared with the other replicas", "uri", raw, "error", err)
		}
	}
}

// Total returns how many (session, trigger) subscriptions are open.
func (r *Resources) Total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, sessions := range r.subs {
		n += len(sessions)
	}
	return n
}

// Subscribers returns how many sessions subscribed to a trigger.
func (r *Resources) Subscribers(uri string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.subs[uri])
}

// Notify tells every subscribed session that the trigger has new events;
// in cluster mode, every subscribed session of the cluster registered on
// this replica (each replica is told of every batch).
func (r *Resources) Notify(uri string) {
	r.mu.Lock()
	srv, shared := r.srv, r.shared
	targets := map[string]string{}
	for sid, raw := range r.subs[uri] {
		targets[sid] = raw
	}
	r.mu.Unlock()
	if srv == nil {
		return
	}
	if shared != nil {
		ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
		subs, err := shared.Subscribers(ctx, uri)
		cancel()
		if err != nil {
			r.log.Warn("subscribers of a trigger not read; only this replica's are told", "trigger", triggers.PublicURI(uri), "error", err)
		}
		r.mu.Lock()
		for hash, raw := range subs {
			if sid, ok := r.local[hash]; ok {
				targets[sid] = raw
			}
		}
		r.mu.Unlock()
	}
	for sid, raw := range targets {
		if err := srv.SendNotificationToSpecificClient(sid, mcp.MethodNotificationResourceUpdated, map[string]any{"uri": raw}); err != nil {
			r.log.Debug("notification not delivered", "session", sid, "error", err)
		}
	}
}

// EventView is one event as readers see it.
type EventView struct {
	Seq        int64  `json:"seq"`
	Key        string `json:"key"`
	ReceivedAt string `json:"received_at"`
	// Data is the record as the connector's tools return it (see the
	// kind's payload schema).
	Data json.RawMessage `json:"data"`
	// Raw is the upstream record as received, when asked for and when it
	// differs from Data.
	Raw json.RawMessage `json:"raw,omitempty"`
}

// Page is what a trigger read returns.
type Page struct {
	Trigger string      `json:"trigger"`
	Events  []EventView `json:"events"`
	// Cursor is the newest sequence returned (or the position read from); pass it as after.
	Cursor int64 `json:"cursor"`
	More   bool  `json:"more"`
}

// sharedTimeout bounds a read of the shared subscriptions.
const sharedTimeout = 5 * time.Second

// readLimit is how many events one read returns at most.
const readLimit = 100

// ReadEvents returns events of the caller's trigger of a URI after a
// sequence, or — with after < 0 and a consumer — after that consumer's
// cursor, advancing it, so the same consumer never gets an event twice.
// Consumer names are the caller's own: another principal's "alice" is
// another cursor. With withRaw, events carry their upstream records too.
func ReadEvents(ctx context.Context, m *triggers.Manager, raw string, after int64, consumer string, limit int, withRaw bool) (Page, error) {
	_, _, uri, _, err := m.ResolveFor(ctx, raw)
	if err != nil {
		return Page{}, err
	}
	if owner := m.Owner(ctx); owner != "" && consumer != "" {
		consumer = owner + "/" + consumer
	}
	if _, ok, err := m.Store().Trigger(ctx, uri); err != nil {
		return Page{}, err
	} else if !ok {
		return Page{}, tools.NotFound("trigger %s was never started (by you): start it with trigger_start or resources/subscribe", triggers.PublicURI(uri))
	}
	if limit <= 0 || limit > readLimit {
		limit = readLimit
	}
	st := m.Store()
	var evs []store.Event
	page := Page{Trigger: triggers.PublicURI(uri), Events: []EventView{}, Cursor: max(after, 0)}
	if after < 0 && consumer != "" {
		if page.Cursor, err = st.Cursor(ctx, consumer, uri); err != nil {
			return Page{}, err
		}
		evs, err = st.ReadAndAdvance(ctx, consumer, uri, limit)
	} else {
		evs, err = st.EventsAfter(ctx, uri, page.Cursor, limit)
	}
	if err != nil {
		return Page{}, err
	}
	for _, e := range evs {
		v := EventView{Seq: e.Seq, Key: e.Key, ReceivedAt: e.ReceivedAt.UTC().Format("2006-01-02T15:04:05.000Z"), Data: e.Payload}
		if withRaw {
			v.Raw = e.Raw
		}
		page.Events = append(page.Events, v)
		page.Cursor = e.Seq
	}
	latest, err := st.LatestSeq(ctx, uri)
	if err != nil {
		return Page{}, err
	}
	page.More = latest > page.Cursor
	return page, nil
}

func (r *Resources) read(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	u, err := url.Parse(req.Params.URI)
	if err != nil {
		return nil, err
	}
	after := int64(-1)
	if a := u.Query().Get("after"); a != "" {
		if after, err = strconv.ParseInt(a, 10, 64); err != nil || after < 0 {
			return nil, fmt.Errorf("after must be a non-negative event sequence, got %q", a)
		}
	}
	withRaw := false
	if v := u.Query().Get("raw"); v != "" {
		if withRaw, err = strconv.ParseBool(v); err != nil {
			return nil, fmt.Errorf("raw must be true or false, got %q", v)
		}
	}
	consumer := ""
	if sid := sessionID(ctx); sid != "" {
		consumer = "session:" + sid
	}
	if after < 0 && consumer == "" {
		after = 0
	}
	page, err := ReadEvents(ctx, r.manager, req.Params.URI, after, consumer, readLimit, withRaw)
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(page)
	return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, MIMEType: "application/json", Text: string(body)}}, nil
}
