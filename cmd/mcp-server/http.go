package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/cosell-mcp/cosell-mcp/internal/sessionstore"
	"github.com/cosell-mcp/cosell-mcp/tools"
)

// maxRequestBytes bounds one MCP request body.
const maxRequestBytes = 4 << 20

// shutdownGrace is how long in-flight calls may finish on SIGINT/SIGTERM.
const shutdownGrace = 30 * time.Second

// HTTPConfig is the streamable HTTP transport's configuration.
type HTTPConfig struct {
	Addr           string
	AllowedOrigins []string
	// Auth wraps the MCP endpoint with bearer authentication; nil means none.
	Auth func(http.Handler) http.Handler
	// Extra routes (e.g. protected resource metadata) served beside /mcp.
	Extra map[string]http.Handler
	// SessionIdleTTL ends an MCP session unused for this long (0: 30 min).
	// In a cluster every replica must use the same.
	SessionIdleTTL time.Duration
}

// isLoopback reports whether a listen address only accepts local connections.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.IsLoopback()
}

// defaultSessionIdleTTL ends an MCP session unused for this long.
const defaultSessionIdleTTL = 30 * time.Minute

// httpHandler is newHTTPHandler for callers that cannot fail: without a
// database (app.DB nil) it never does; with one it panics if the sessions
// table cannot be set up (tests and benchmarks only; serveHTTP reports
// the error).
func httpHandler(app *App, hc HTTPConfig, log *slog.Logger) (http.Handler, *server.StreamableHTTPServer) {
	h, mcpSrv, err := newHTTPHandler(app, hc, log)
	if err != nil {
		panic(err)
	}
	return h, mcpSrv
}

// newHTTPHandler is the HTTP surface: /mcp, /healthz, /readyz and extras.
// With app.DB (cluster mode) the MCP sessions live in the shared table of
// internal/sessionstore, so any replica serves any session (see
// sessions.go); otherwise in this process's memory.
func newHTTPHandler(app *App, hc HTTPConfig, log *slog.Logger) (http.Handler, *server.StreamableHTTPServer, error) {
	ttl := hc.SessionIdleTTL
	if ttl <= 0 {
		ttl = defaultSessionIdleTTL
	}
	var (
		sessions sessionBackend
		shared   *sharedSessions
	)
	if app.DB != nil {
		store, err := openSessionStore(app, ttl, log)
		if err != nil {
			return nil, nil, err
		}
		shared = newSharedSessions(store, app.Server, log)
		sessions = shared
		if app.Resources != nil {
			// A session's stream may be on another replica than its
			// subscription: every replica sees every subscription.
			app.Resources.ShareSubscriptions(store)
		}
	} else {
		sessions = newMemorySessions()
	}
	mcpSrv := server.NewStreamableHTTPServer(app.Server,
		server.WithEndpointPath("/mcp"),
		server.WithSessionIdManagerResolver(sessions),
		server.WithHeartbeatInterval(30*time.Second),
		// mcp-go's own sweep forgets the local state of a session idle on
		// this replica; with a shared table the table expires sessions.
		server.WithSessionIdleTTL(ttl),
		server.WithStreamableHTTPLogger(log),
		server.WithHTTPContextFunc(callerCredentials),
	)
	if shared != nil {
		shared.attach(mcpSrv)
	}
	var mcp http.Handler = mcpSrv
	mcp = narrowTools(app.Registry, mcp)
	mcp = sessions.guard(mcp)
	mcp = limitBody(mcp)
	if hc.Auth != nil {
		mcp = hc.Auth(mcp)
	}
	mcp = checkOrigin(hc.AllowedOrigins, mcp)

	mux := http.NewServeMux()
	mux.Handle("/mcp", mcp)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if _, err := app.Triggers.Active(r.Context()); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": "state database unavailable"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	for path, h := range hc.Extra {
		mux.Handle(path, h)
	}
	return accessLog(log, mux), mcpSrv, nil
}

// openSessionStore sets up the shared sessions table and starts this
// replica's sweep of expired sessions, stopped when the app closes.
func openSessionStore(app *App, ttl time.Duration, log *slog.Logger) (*sessionstore.Store, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := sessionstore.Open(ctx, app.DB, sessionstore.Config{IdleTTL: ttl})
	if err != nil {
		return nil, fmt.Errorf("--database-url: the MCP sessions table: %w", err)
	}
	sweepCtx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		store.RunSweeper(sweepCtx, nil, 0, func(err error) { log.Warn("expired MCP sessions not swept", "error", err) })
	}()
	app.closers = append(app.closers, func() { stop(); <-done })
	log.Info("MCP sessions shared through PostgreSQL", "idle_ttl", ttl)
	return store, nil
}

// serveHTTP serves until ctx ends, then lets in-flight calls finish.
func serveHTTP(ctx context.Context, app *App, hc HTTPConfig, log *slog.Logger) error {
	handler, mcpSrv, err := newHTTPHandler(app, hc, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", hc.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	log.Info("serving MCP over streamable HTTP", "url", "http://"+ln.Addr().String()+"/mcp", "auth", hc.Auth != nil)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: waiting for in-flight calls")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	_ = mcpSrv.Shutdown(sctx)
	// Keep closing sessions while the HTTP server drains: a GET stream that
	// arrived between the first close and the listener closing would
	// otherwise hold the shutdown for its whole grace period.
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(sctx) }()
	drain := time.NewTicker(5 * time.Millisecond)
	defer drain.Stop()
	for {
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		case <-drain.C:
			mcpSrv.CloseSessions(sctx)
		}
	}
}

// Credential headers a caller may send to use its own connector accounts.
const (
	HeaderPipedriveToken     = "X-Pipedrive-Api-Token"
	HeaderPartnerCenterToken = "X-PartnerCenter-Access-Token"
)

// callerCredentials puts a caller's own connector credentials (if sent)
// into the request context: each distinct credential is its own
// connection with its own budget.
func callerCredentials(ctx context.Context, r *http.Request) context.Context {
	ctx = tools.WithCredential(ctx, "pipedrive", strings.TrimSpace(r.Header.Get(HeaderPipedriveToken)))
	return tools.WithCredential(ctx, "partnercenter", strings.TrimSpace(r.Header.Get(HeaderPartnerCenterToken)))
}

// checkOrigin refuses browser requests from foreign origins (DNS
// rebinding, cross-site): an Origin header must be listed or match the Host.
func checkOrigin(allowed []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" && !slices.Contains(allowed, origin) {
			u, err := url.Parse(origin)
			if err != nil || !strings.EqualFold(u.Host, r.Host) {
				writeJSON(w, http.StatusForbidden, map[string]string{"error": "forbidden", "message": fmt.Sprintf("origin %q is not allowed (--allowed-origins)", origin)})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxRequestBytes {
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": "request too large"})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxRequestBytes)
		next.ServeHTTP(w, r)
	})
}

// statusWriter remembers the status code for the access log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) { s.status = code; s.ResponseWriter.WriteHeader(code) }

// Flush keeps SSE streaming working through the wrapper.
func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// accessLog writes one structured line per request; it never logs headers
// (which carry credentials) or bodies.
func accessLog(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		log.Info("http", "method", r.Method, "path", r.URL.Path, "status", sw.status, "ms", time.Since(start).Milliseconds(), "remote", r.RemoteAddr)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
