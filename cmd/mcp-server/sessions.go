package main

// MCP sessions of the streamable HTTP transport (protocol versions up to
// 2025-11-25; requests of 2026-07-28 carry no session and pass through).
//
// Every session belongs to the principal that opened it (the API key name
// or JWT subject; "" without auth): another principal's requests on it are
// answered as for an unknown session (404), so a leaked or guessed id lets
// nobody else call tools on it, read its stream or end it. The sessions
// live in one of two places:
//
//   - memorySessions (no --database-url): this process's memory, as one
//     process serves every request of a session.
//   - sharedSessions (--database-url): the shared PostgreSQL table of
//     internal/sessionstore, so that a cluster of replicas behind a load
//     balancer (round robin, no stickiness) serves a session on any
//     replica, including after the replica that opened it is gone.
//
// # What mcp-go does with a session id it has never seen
//
// mcp-go v1.2.1 keeps its per-session state in the memory of the replica
// that handled initialize: the registered session (client info, client
// capabilities, negotiated protocol version), its logging level, its
// session tools and resources, its GET stream and pending server→client
// requests. On another replica, a valid id that replica has never seen
// (checked through our SessionIdManager) is served as follows:
//
//   - POST requests and notifications work: mcp-go builds a throw-away
//     session for the request, whose Initialized() is always true, so
//     tools/call, resources/read etc. succeed. But that session has no
//     client info, no client capabilities (a handler asking for roots
//     would see none) and the default logging level; and notifications
//     sent to the session by id (SendNotificationToSpecificClient, e.g.
//     notifications/resources/updated) find no registered session there.
//   - GET (the listening stream) is never validated by mcp-go: it opens a
//     stream for whatever id it is given and registers a bare session for
//     it, without client info, for as long as the stream lasts.
//   - DELETE calls Terminate and drops only that replica's local state.
//   - Its idle sweeper and its shutdown call Terminate (with no request)
//     for the sessions it holds locally: with a shared table that would
//     end, cluster-wide, a session merely idle on, or served by a replica
//     that is stopping.
//
// sharedSessions therefore: validates every POST, GET and DELETE against
// the table before mcp-go sees it (GET and DELETE included); stores the
// client's initialize params with the session; and, on a replica that has
// not registered the session yet, adopts it by replaying that initialize
// through mcp-go with the session's own id, so that mcp-go registers a
// real session with the same client info, capabilities and protocol
// version (and, if the client set one, its logging level) before the
// request runs. Terminate without a request (idle sweep, shutdown) only
// forgets the replica's local state; the table expires idle sessions
// itself (internal/sessionstore Sweep, run by every replica).
//
// # What cannot be shared
//
//   - Server→client requests (roots/list, elicitation/create,
//     sampling/createMessage) wait on the replica that sent them: the
//     client's answer, POSTed on the session, must reach that same
//     replica (sticky routing by Mcp-Session-Id), or it is lost. This
//     server asks for roots only over stdio and sends no elicitation or
//     sampling, so nothing it does over HTTP depends on it.
//   - Server→client notifications of a session (resource updates of
//     subscribed triggers, progress and log messages outside the request
//     that caused them) are sent by the replica that holds the
//     subscription or request, on that replica's GET stream (or the next
//     POST response of the session there). Behind a round-robin balancer a
//     client's GET stream may be on another replica: subscribe and listen
//     through the same replica (sticky routing) or read the trigger's
//     events (trigger_read_events) instead of relying on the notification.
//   - notifications/cancelled reaches only the replica it lands on: a
//     request running elsewhere runs to its end.
//   - A logging level set after a replica adopted the session is applied
//     there on its next request (the level is kept in the table).
//   - A session ended on one replica keeps, on the others, its local
//     memory (and an open GET stream) until its next request there (then
//     404) or their idle sweep; it is no longer usable anywhere.
//   - Requests of protocol 2026-07-28 carry no session at all: they work on
//     any replica as they are.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/cosell-mcp/cosell-mcp/internal/sessionstore"
)

// errUnknownSession is what another principal's (or a forged) session id
// gets: the same 404 as an id that never existed.
var errUnknownSession = errors.New("unknown session")

// sessionBackend is where the sessions of the HTTP transport live: the
// session id manager of mcp-go and the guard in front of it.
type sessionBackend interface {
	server.SessionIdManagerResolver
	// guard answers the requests that name a session the caller may not
	// use, before the transport sees them.
	guard(next http.Handler) http.Handler
}

// ownerOf names the principal of a request ("" when unauthenticated).
func ownerOf(r *http.Request) string {
	if r == nil {
		return ""
	}
	return principalName(r.Context())
}

// ---------------------------------------------------------------------------
// In memory (one process)

// memorySessions binds every MCP session to the principal that created it,
// in this process's memory.
type memorySessions struct {
	mu    sync.Mutex
	owner map[string]string // session id → owner
}

func newMemorySessions() *memorySessions { return &memorySessions{owner: map[string]string{}} }

// ResolveSessionIdManager implements server.SessionIdManagerResolver: the
// manager it returns acts for the request's principal. A nil request (the
// idle-session sweeper, shutdown) acts for the server and may end any session.
func (s *memorySessions) ResolveSessionIdManager(r *http.Request) server.SessionIdManager {
	return memorySessionsFor{s: s, owner: ownerOf(r), server: r == nil}
}

// allows reports whether the principal owner may use the session id with
// method. An id the server never issued (or that ended) is allowed through
// on POST and DELETE, so that the transport answers it as usual; not on
// GET, which the transport never validates (it would open a stream for
// any id).
func (s *memorySessions) allows(id, owner, method string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	got, known := s.owner[id]
	if !known {
		return method != http.MethodGet
	}
	return got == owner
}

// guard answers 404 to a request that names another principal's session,
// before the transport sees it (the transport's DELETE would otherwise end
// the session without asking whose it is), and to a GET naming no live
// session.
func (s *memorySessions) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := r.Header.Get(server.HeaderKeySessionID); id != "" && !modernRequest(r) && !s.allows(id, ownerOf(r), r.Method) {
			http.Error(w, "Invalid session ID", http.StatusNotFound)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// memorySessionsFor is the session id manager of one principal.
type memorySessionsFor struct {
	s      *memorySessions
	owner  string
	server bool
}

// Generate issues a new unguessable session id owned by the principal.
func (m memorySessionsFor) Generate() string {
	id, err := sessionstore.NewID()
	if err != nil {
		panic(err)
	}
	m.s.mu.Lock()
	m.s.owner[id] = m.owner
	m.s.mu.Unlock()
	return id
}

// Validate accepts only live sessions of the principal.
func (m memorySessionsFor) Validate(id string) (isTerminated bool, err error) {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	owner, ok := m.s.owner[id]
	if !ok || (!m.server && owner != m.owner) {
		return false, errUnknownSession
	}
	return false, nil
}

// Terminate ends a session of the principal (the server may end any);
// another principal's session is left alone.
func (m memorySessionsFor) Terminate(id string) (isNotAllowed bool, err error) {
	m.s.mu.Lock()
	defer m.s.mu.Unlock()
	if owner, ok := m.s.owner[id]; ok && (m.server || owner == m.owner) {
		delete(m.s.owner, id)
	}
	return false, nil
}

// ---------------------------------------------------------------------------
// Shared (a cluster of replicas on one PostgreSQL)

// sharedSessions keeps the sessions in the shared table and lets this
// replica serve any of them (see the comment at the top of the file).
type sharedSessions struct {
	store *sessionstore.Store
	srv   *server.MCPServer // to drop the local state of an ended session
	log   *slog.Logger
	mcp   http.Handler // the transport, to replay initialize; set by attach

	mu       sync.Mutex
	local    map[string]*localSession // sessions registered in this replica's mcp-go
	adopting map[string]chan struct{} // adoptions under way, closed when done
}

// localSession is what this replica knows of a session it registered.
type localSession struct {
	level string // logging level applied here ("" for mcp-go's default)
}

func newSharedSessions(store *sessionstore.Store, srv *server.MCPServer, log *slog.Logger) *sharedSessions {
	return &sharedSessions{store: store, srv: srv, log: log, local: map[string]*localSession{}, adopting: map[string]chan struct{}{}}
}

// attach gives the sessions the transport they adopt sessions into.
func (s *sharedSessions) attach(mcp http.Handler) { s.mcp = mcp }

// Context markers set by the guard for the session id manager.
type (
	issuedKey    struct{} // the id Generate returns: opened by the guard, or adopted
	validatedKey struct{} // the id the guard has just validated for the caller
	endedKey     struct{} // the id the guard has just ended for the caller
)

func withMarker(ctx context.Context, key any, id string) context.Context {
	return context.WithValue(ctx, key, id)
}

func marked(r *http.Request, key any, id string) bool {
	if r == nil {
		return false
	}
	got, ok := r.Context().Value(key).(string)
	return ok && got == id && id != ""
}

// ResolveSessionIdManager implements server.SessionIdManagerResolver. A nil
// request (mcp-go's idle sweeper, shutdown) may only forget local state.
func (s *sharedSessions) ResolveSessionIdManager(r *http.Request) server.SessionIdManager {
	return sharedSessionsFor{s: s, r: r}
}

// sharedSessionsFor is the session id manager of one request.
type sharedSessionsFor struct {
	s *sharedSessions
	r *http.Request // nil: the server itself
}

// Generate returns the id the guard opened (or is adopting). Otherwise (an
// initialize the guard did not recognise) it opens a session without the
// client's params; if the table cannot be reached it returns an id that is
// in no table, which no later request can use (fail closed).
func (m sharedSessionsFor) Generate() string {
	if m.r != nil {
		if id, ok := m.r.Context().Value(issuedKey{}).(string); ok && id != "" {
			return id
		}
	}
	ctx := context.Background()
	if m.r != nil {
		ctx = m.r.Context()
	}
	id, err := m.s.store.Generate(ctx, ownerOf(m.r), nil)
	if err != nil {
		m.s.log.Warn("MCP session not opened: session store unavailable", "error", err)
		if id, err = sessionstore.NewID(); err != nil {
			panic(err)
		}
	}
	return id
}

// Validate accepts the id the guard has just validated, and otherwise asks
// the table (no id, or a request the guard let through unchecked).
func (m sharedSessionsFor) Validate(id string) (isTerminated bool, err error) {
	if m.r == nil {
		return false, errUnknownSession
	}
	if marked(m.r, validatedKey{}, id) {
		return false, nil
	}
	if _, err := m.s.store.Validate(m.r.Context(), id, ownerOf(m.r)); err != nil {
		return false, errUnknownSession
	}
	return false, nil
}

// Terminate forgets this replica's state of the session. The session
// itself is ended in the table by the guard (DELETE), never here: mcp-go
// also calls Terminate for sessions idle on this replica and at shutdown,
// which must not end them for the other replicas.
func (m sharedSessionsFor) Terminate(id string) (isNotAllowed bool, err error) {
	if m.r != nil && !marked(m.r, endedKey{}, id) {
		return true, nil // not through the guard: refuse rather than end anything
	}
	m.s.mu.Lock()
	delete(m.s.local, id)
	m.s.mu.Unlock()
	return false, nil
}

// jsonrpcHead is the part of a JSON-RPC message the guard looks at.
type jsonrpcHead struct {
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

// peek reads the method and params of the messages the guard acts on
// (initialize, logging/setLevel); for the others it returns nothing, and
// does not parse the body.
func peek(body []byte) jsonrpcHead {
	var head jsonrpcHead
	if !bytes.Contains(body, []byte(`"initialize"`)) && !bytes.Contains(body, []byte(`"logging/setLevel"`)) {
		return head
	}
	_ = json.Unmarshal(body, &head)
	return head
}

// modernRequest reports whether r is of protocol 2026-07-28 or later,
// which has no sessions: mcp-go ignores its Mcp-Session-Id.
func modernRequest(r *http.Request) bool {
	return mcp.IsModernProtocol(r.Header.Get(mcp.HeaderProtocolVersion))
}

// guard checks every request naming a session against the table (404 if
// the session is not the caller's live one, 503 if the table cannot be
// reached), opens the session of an initialize, ends it on DELETE, and
// adopts a session this replica has not registered yet.
func (s *sharedSessions) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if modernRequest(r) {
			next.ServeHTTP(w, r)
			return
		}
		ctx, owner := r.Context(), ownerOf(r)
		id := r.Header.Get(server.HeaderKeySessionID)
		var head jsonrpcHead
		if r.Method == http.MethodPost {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				status := http.StatusBadRequest
				if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
					status = http.StatusRequestEntityTooLarge
				}
				writeJSON(w, status, map[string]string{"error": "could not read the request body"})
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			head = peek(body)
		}
		switch {
		case r.Method == http.MethodPost && head.Method == string(mcp.MethodInitialize):
			s.initialize(w, r, owner, head.Params, next)
			return
		case id == "" && (r.Method == http.MethodGet || r.Method == http.MethodDelete):
			http.Error(w, "Bad Request: Mcp-Session-Id header is required", http.StatusBadRequest)
			return
		case id == "" || (r.Method != http.MethodPost && r.Method != http.MethodGet && r.Method != http.MethodDelete):
			next.ServeHTTP(w, r) // mcp-go answers a POST without a session as for an unknown one
			return
		case r.Method == http.MethodDelete:
			if err := s.store.Terminate(ctx, id, owner); err != nil {
				s.refuse(w, r, id, err)
				return
			}
			s.forgetLocal(ctx, id, false)
			next.ServeHTTP(w, r.WithContext(withMarker(ctx, endedKey{}, id)))
			return
		}
		sess, err := s.store.Validate(ctx, id, owner)
		if err != nil {
			s.refuse(w, r, id, err)
			return
		}
		ctx = withMarker(ctx, validatedKey{}, id)
		r = r.WithContext(ctx)
		s.adopt(r, id, sess)
		if head.Method == string(mcp.MethodSetLogLevel) {
			s.recordLevel(ctx, id, owner, head.Params)
		}
		next.ServeHTTP(w, r)
	})
}

// refuse answers a request whose session check failed: 503 when the table
// could not tell (the session may well be valid: the client should retry,
// not start over), else the transport's 404 for an unknown session. The
// local state of the caller's own ended or expired session is dropped.
func (s *sharedSessions) refuse(w http.ResponseWriter, r *http.Request, id string, err error) {
	if errors.Is(err, sessionstore.ErrUnavailable) {
		s.log.Warn("MCP session not checked: session store unavailable", "error", err)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "Session store unavailable", http.StatusServiceUnavailable)
		return
	}
	if errors.Is(err, sessionstore.ErrEnded) {
		s.forgetLocal(r.Context(), id, true)
	}
	http.Error(w, "Invalid session ID", http.StatusNotFound)
}

// initialize opens a session in the table with the client's initialize
// params, and lets mcp-go initialize it under that id.
func (s *sharedSessions) initialize(w http.ResponseWriter, r *http.Request, owner string, params json.RawMessage, next http.Handler) {
	ctx := r.Context()
	id, err := s.store.Generate(ctx, owner, params)
	if err != nil {
		s.log.Warn("MCP session not opened: session store unavailable", "error", err)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "Session store unavailable", http.StatusServiceUnavailable)
		return
	}
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	next.ServeHTTP(sw, r.WithContext(withMarker(ctx, issuedKey{}, id)))
	if sw.status == http.StatusOK && sw.Header().Get(server.HeaderKeySessionID) == id {
		s.mu.Lock()
		s.local[id] = &localSession{}
		s.mu.Unlock()
		return
	}
	// The client never learnt the id: end the session at once.
	if err := s.store.Terminate(context.WithoutCancel(ctx), id, owner); err != nil {
		s.log.Debug("unused MCP session not ended", "error", err)
	}
}

// forgetLocal drops this replica's state of a session that ended; with
// unregister, mcp-go's registration too (its hooks then drop the session's
// subscriptions).
func (s *sharedSessions) forgetLocal(ctx context.Context, id string, unregister bool) {
	s.mu.Lock()
	_, was := s.local[id]
	delete(s.local, id)
	s.mu.Unlock()
	if was && unregister {
		s.srv.UnregisterSession(ctx, id)
	}
}

// adopt makes sure the session is registered in this replica's mcp-go,
// with the client's info and capabilities and logging level, before r is
// served. It replays the session's initialize (and logging/setLevel)
// through the transport under the session's own id; concurrent requests of
// one session wait for one adoption. A failed adoption is logged, and the
// request is served by mcp-go's throw-away session (tools work, client
// info is missing); the next request tries again.
func (s *sharedSessions) adopt(r *http.Request, id string, sess *sessionstore.Session) {
	for {
		s.mu.Lock()
		if l, ok := s.local[id]; ok {
			stale := sess.LogLevel != "" && sess.LogLevel != l.level
			if stale {
				l.level = sess.LogLevel
			}
			s.mu.Unlock()
			if stale {
				s.replay(r, id, mcp.MethodSetLogLevel, map[string]any{"level": sess.LogLevel})
			}
			return
		}
		if wait, busy := s.adopting[id]; busy {
			s.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-r.Context().Done():
				return
			}
		}
		done := make(chan struct{})
		s.adopting[id] = done
		s.mu.Unlock()

		params := sess.Client
		if len(params) == 0 {
			params, _ = json.Marshal(mcp.InitializeParams{ProtocolVersion: mcp.LATEST_LEGACY_PROTOCOL_VERSION})
		}
		ok := s.replay(r, id, mcp.MethodInitialize, params)
		s.mu.Lock()
		delete(s.adopting, id)
		if ok {
			s.local[id] = &localSession{level: sess.LogLevel}
		}
		close(done)
		s.mu.Unlock()
		if !ok {
			s.log.Warn("MCP session not adopted: served without its client info", "session", id)
			return
		}
		s.log.Debug("MCP session adopted from the shared store", "session", id)
		if sess.LogLevel != "" {
			s.replay(r, id, mcp.MethodSetLogLevel, map[string]any{"level": sess.LogLevel})
		}
		return
	}
}

// replay sends one request of the session through the transport, on behalf
// of r (same principal, host and connection), and reports whether it
// succeeded. An initialize gets the session's id from Generate.
func (s *sharedSessions) replay(r *http.Request, id string, method mcp.MCPMethod, params any) bool {
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": "cosell-replay", "method": method, "params": params})
	if err != nil {
		return false
	}
	ctx := withMarker(r.Context(), issuedKey{}, id)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL.String(), bytes.NewReader(body))
	if err != nil {
		return false
	}
	req.Host, req.RemoteAddr = r.Host, r.RemoteAddr
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if method != mcp.MethodInitialize {
		req.Header.Set(server.HeaderKeySessionID, id)
	}
	rec := &replayWriter{header: http.Header{}, status: http.StatusOK}
	s.mcp.ServeHTTP(rec, req)
	var resp struct {
		Error *json.RawMessage `json:"error"`
	}
	if rec.status != http.StatusOK || json.Unmarshal(rec.body.Bytes(), &resp) != nil || resp.Error != nil {
		s.log.Debug("MCP session replay failed", "method", method, "status", rec.status, "body", rec.body.String())
		return false
	}
	return method != mcp.MethodInitialize || rec.header.Get(server.HeaderKeySessionID) == id
}

// recordLevel keeps the logging level the client sets in the table, for
// the replicas that adopt the session.
func (s *sharedSessions) recordLevel(ctx context.Context, id, owner string, params json.RawMessage) {
	var p struct {
		Level mcp.LoggingLevel `json:"level"`
	}
	if json.Unmarshal(params, &p) != nil || !validLevel(p.Level) {
		return // mcp-go answers the error
	}
	if err := s.store.SetLogLevel(ctx, id, owner, string(p.Level)); err != nil {
		s.log.Warn("MCP session logging level not shared", "error", err)
	}
	s.mu.Lock()
	if l, ok := s.local[id]; ok {
		l.level = string(p.Level)
	}
	s.mu.Unlock()
}

func validLevel(l mcp.LoggingLevel) bool {
	switch l {
	case mcp.LoggingLevelDebug, mcp.LoggingLevelInfo, mcp.LoggingLevelNotice, mcp.LoggingLevelWarning,
		mcp.LoggingLevelError, mcp.LoggingLevelCritical, mcp.LoggingLevelAlert, mcp.LoggingLevelEmergency:
		return true
	}
	return false
}

// replayWriter records the transport's answer to a replayed request.
type replayWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *replayWriter) Header() http.Header         { return w.header }
func (w *replayWriter) WriteHeader(status int)      { w.status = status }
func (w *replayWriter) Write(p []byte) (int, error) { return w.body.Write(p) }
