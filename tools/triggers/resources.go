// Package triggers exposes connector triggers as MCP resources (one
// template per trigger), tracks which sessions subscribed to which, and
// offers tools for clients without resource support.
package triggers

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/cosell-mcp/cosell-mcp/internal/store"
	"github.com/cosell-mcp/cosell-mcp/internal/triggers"
)

// Resources tracks subscriptions (mcp-go acknowledges but does not keep
// them) and turns new events into notifications/resources/updated.
type Resources struct {
	manager *triggers.Manager
	log     *slog.Logger

	mu   sync.Mutex
	srv  *server.MCPServer
	subs map[string]map[string]string // canonical URI → session id → URI as subscribed
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
	h.AddOnUnregisterSession(func(_ context.Context, s server.ClientSession) {
		r.mu.Lock()
		defer r.mu.Unlock()
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
			deprecated[k.Template()] = k.Deprecated
		}
		kept := res.ResourceTemplates[:0]
		for _, t := range res.ResourceTemplates {
			if t.URITemplate == nil || !deprecated[t.URITemplate.Raw()] {
				kept = append(kept, t)
			}
		}
		res.ResourceTemplates = kept
	})
}

// Attach registers one resource template per trigger kind on the server.
func (r *Resources) Attach(srv *server.MCPServer) {
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	for _, k := range r.manager.Kinds() {
		tmpl := mcp.NewResourceTemplate(k.Template(), k.Title,
			mcp.WithTemplateDescription(k.Description+" Read returns events after ?after=SEQ (or after this session's cursor); subscribe to be told of new ones."),
			mcp.WithTemplateMIMEType("application/json"))
		srv.AddResourceTemplate(tmpl, r.read)
	}
}

func sessionID(ctx context.Context) string {
	if s := server.ClientSessionFromContext(ctx); s != nil {
		return s.SessionID()
	}
	return ""
}

func (r *Resources) subscribe(ctx context.Context, raw string) {
	uri, err := r.manager.Start(ctx, raw)
	if err != nil {
		r.log.Warn("subscribe: trigger not started", "uri", raw, "error", err)
		return
	}
	sid := sessionID(ctx)
	if sid == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.subs[uri] == nil {
		r.subs[uri] = map[string]string{}
	}
	r.subs[uri][sid] = raw
}

func (r *Resources) unsubscribe(ctx context.Context, raw string) {
	_, _, uri, err := r.manager.Resolve(raw)
	if err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.subs[uri], sessionID(ctx))
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

// Notify tells every subscribed session that the trigger has new events.
func (r *Resources) Notify(uri string) {
	r.mu.Lock()
	srv := r.srv
	targets := map[string]string{}
	for sid, raw := range r.subs[uri] {
		targets[sid] = raw
	}
	r.mu.Unlock()
	if srv == nil {
		return
	}
	for sid, raw := range targets {
		if err := srv.SendNotificationToSpecificClient(sid, mcp.MethodNotificationResourceUpdated, map[string]any{"uri": raw}); err != nil {
			r.log.Debug("notification not delivered", "session", sid, "error", err)
		}
	}
}

// EventView is one event as readers see it.
type EventView struct {
	Seq        int64           `json:"seq"`
	Key        string          `json:"key"`
	ReceivedAt string          `json:"received_at"`
	Data       json.RawMessage `json:"data"`
}

// Page is what a trigger read returns.
type Page struct {
	Trigger string      `json:"trigger"`
	Events  []EventView `json:"events"`
	// Cursor is the newest sequence returned (or the position read from); pass it as after.
	Cursor int64 `json:"cursor"`
	More   bool  `json:"more"`
}

// readLimit is how many events one read returns at most.
const readLimit = 100

// ReadEvents returns events of a trigger after a sequence, or — with after
// < 0 and a consumer — after that consumer's cursor, advancing it, so the
// same consumer never gets an event twice.
func ReadEvents(ctx context.Context, m *triggers.Manager, raw string, after int64, consumer string, limit int) (Page, error) {
	_, _, uri, err := m.Resolve(raw)
	if err != nil {
		return Page{}, err
	}
	if limit <= 0 || limit > readLimit {
		limit = readLimit
	}
	st := m.Store()
	var evs []store.Event
	page := Page{Trigger: uri, Events: []EventView{}, Cursor: max(after, 0)}
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
		page.Events = append(page.Events, EventView{Seq: e.Seq, Key: e.Key, ReceivedAt: e.ReceivedAt.UTC().Format("2006-01-02T15:04:05.000Z"), Data: e.Payload})
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
	consumer := ""
	if sid := sessionID(ctx); sid != "" {
		consumer = "session:" + sid
	}
	if after < 0 && consumer == "" {
		after = 0
	}
	page, err := ReadEvents(ctx, r.manager, req.Params.URI, after, consumer, readLimit)
	if err != nil {
		return nil, err
	}
	body, _ := json.Marshal(page)
	return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, MIMEType: "application/json", Text: string(body)}}, nil
}
