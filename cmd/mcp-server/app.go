package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"go.opentelemetry.io/otel/trace"

	"github.com/cosell-mcp/cosell-mcp/connectors/partnercenter"
	pcsandbox "github.com/cosell-mcp/cosell-mcp/connectors/partnercenter/sandbox"
	"github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
	pdsandbox "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive/sandbox"
	"github.com/cosell-mcp/cosell-mcp/connectors/workspan"
	wssandbox "github.com/cosell-mcp/cosell-mcp/connectors/workspan/sandbox"
	"github.com/cosell-mcp/cosell-mcp/internal/bulkfile"
	"github.com/cosell-mcp/cosell-mcp/internal/httpauth"
	"github.com/cosell-mcp/cosell-mcp/internal/httpx"
	"github.com/cosell-mcp/cosell-mcp/internal/ledger"
	"github.com/cosell-mcp/cosell-mcp/internal/metrics"
	"github.com/cosell-mcp/cosell-mcp/internal/sealed"
	"github.com/cosell-mcp/cosell-mcp/internal/store"
	"github.com/cosell-mcp/cosell-mcp/internal/store/pgstore"
	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
	"github.com/cosell-mcp/cosell-mcp/internal/tokenstore"
	"github.com/cosell-mcp/cosell-mcp/internal/tracing"
	"github.com/cosell-mcp/cosell-mcp/internal/triggers"
	"github.com/cosell-mcp/cosell-mcp/prompts"
	"github.com/cosell-mcp/cosell-mcp/tools"
	"github.com/cosell-mcp/cosell-mcp/tools/completions"
	pctools "github.com/cosell-mcp/cosell-mcp/tools/partnercenter"
	pdtools "github.com/cosell-mcp/cosell-mcp/tools/pipedrive"
	trtools "github.com/cosell-mcp/cosell-mcp/tools/triggers"
	wstools "github.com/cosell-mcp/cosell-mcp/tools/workspan"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// upstreamTimeout bounds one upstream HTTP exchange.
const upstreamTimeout = 30 * time.Second

// App is the wired server with what must be closed on exit.
type App struct {
	Server   *server.MCPServer
	Registry *tools.Registry
	Budgets  *throttle.Registry
	Triggers *triggers.Manager
	Metrics  *metrics.Metrics
	// Resources tracks the trigger subscriptions of the sessions.
	Resources *trtools.Resources
	// DB is the PostgreSQL pool of --database-url (cluster mode); nil
	// without one.
	DB      *pgxpool.Pool
	closers []func()

	lastError *tools.IdleCache[string, upstreamFailure] // by connection, bounded like the connections
	maxPause  time.Duration                             // longest pause an upstream signal may impose
	subs      func() int
	tracer    trace.Tracer // records spans; nil while tracing is off
}

// Close stops embedded sandboxes.
func (a *App) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
}

// newApp wires connectors, budgets and tools into an MCP server.
func newApp(cfg Config, log *slog.Logger) (*App, error) {
	if err := tracing.CheckLogFormat(cfg.LogFormat); err != nil {
		return nil, fmt.Errorf("--log-format (COSELL_LOG_FORMAT): %w", err)
	}
	bounds := []tools.CacheOption{tools.WithMaxEntries(cfg.MaxConnections), tools.WithIdleTTL(cfg.ConnectionIdleTTL)}
	app := &App{
		lastError: tools.NewIdleCache[string, upstreamFailure](bounds...),
		maxPause:  cfg.MaxUpstreamPause,
	}
	log, err := app.startTracing(log)
	if err != nil {
		return nil, err
	}
	shared, err := app.sharedLedger(cfg, log)
	if err != nil {
		app.Close()
		return nil, err
	}
	var budgetWaits throttle.WaitHook // spans of the waits for budget, while tracing
	if app.tracer != nil {
		budgetWaits = tracing.BudgetWaits(app.tracer)
	}
	app.Budgets = throttle.NewRegistry(throttle.Config{Limit: cfg.BudgetLimit, Window: cfg.BudgetWindow, MaxWait: cfg.BudgetMaxWait, Shared: shared, OnWait: budgetWaits},
		throttle.WithMaxConnections(cfg.MaxConnections), throttle.WithIdleTTL(cfg.ConnectionIdleTTL))
	removeStaleTempFiles(log)
	app.Metrics = metrics.New(app.Budgets, func() int {
		if app.subs == nil {
			return 0
		}
		return app.subs()
	})

	pdBase, pdToken := cfg.PipedriveBaseURL, cfg.PipedriveToken
	if cfg.Sandbox {
		base, srv, err := pdsandbox.Listen("127.0.0.1:0", cfg.PipedriveSandbox)
		if err != nil {
			app.Close()
			return nil, fmt.Errorf("start the Pipedrive sandbox: %w", err)
		}
		app.closers = append(app.closers, func() { _ = srv.Close() })
		pdBase, pdToken = base, pdsandbox.DefaultToken
		log.Warn("PIPEDRIVE_API_TOKEN is not set: Pipedrive runs on the embedded sandbox", "base_url", base)
	}
	newPipedrive := func(connection, token string) *pipedrive.Client {
		return pipedrive.New(token,
			pipedrive.WithBaseURL(orDefault(pdBase, pipedrive.DefaultBaseURL)),
			pipedrive.WithHTTPClient(&http.Client{Transport: app.transport(connection), Timeout: upstreamTimeout}),
			pipedrive.WithUserAgent("cosell-mcp/"+version),
		)
	}
	pdClient := newPipedrive(pdtools.Toolset, pdToken)
	pdPool := tools.NewPool(pdtools.Toolset, pdClient, newPipedrive, bounds...)

	pcClient, pcPool, err := app.partnerCenterClient(cfg, log, bounds)
	if err != nil {
		app.Close()
		return nil, err
	}

	wsClient, err := app.workSpanClient(cfg, log)
	if err != nil {
		app.Close()
		return nil, err
	}

	hooks := &server.Hooks{}
	hooks.AddOnRegisterSession(func(context.Context, server.ClientSession) { app.Metrics.SessionOpened() })
	hooks.AddOnUnregisterSession(func(context.Context, server.ClientSession) { app.Metrics.SessionClosed() })
	pdService := pdtools.NewService(pdPool.For) // one reference-data cache for the tools and the triggers' events
	resources, err := app.startTriggers(cfg, log, hooks, trtools.Clients{Pipedrive: pdClient, PartnerCenter: pcClient, WorkSpan: wsClient,
		PollInterval: cfg.PollInterval, PipedriveFor: pdPool.For, PartnerCenterFor: pcPool.For, PipedriveShapes: pdService})
	if err != nil {
		app.Close()
		return nil, err
	}

	app.subs, app.Resources = resources.Total, resources
	completer := &completions.Provider{Pipedrive: pdPool.For, PartnerCenter: pcPool.For, WorkSpan: wsClient,
		MaxConnections: cfg.MaxConnections, IdleTTL: cfg.ConnectionIdleTTL}
	reg := buildRegistry(app.Budgets, pdService, pcPool.For, wsClient, wsOptions(cfg, app.Budgets))
	reg.Add(tools.ConnectionStatusTool(app.connectionReport(cfg, pdPool.For, map[string]string{
		pdtools.Toolset: pdClient.BaseURL(), pctools.Toolset: pcClient.BaseURL(), wstools.Toolset: wsClient.BaseURL(),
	})))
	reg.Add(trtools.Tools(app.Triggers, resources)...)
	app.Registry = reg

	policy := tools.Policy{Toolsets: cfg.Toolsets, Tools: cfg.Tools, ReadOnly: cfg.ReadOnly, IncludeDeprecated: cfg.IncludeDeprecated}
	if err := policy.Validate(reg); err != nil {
		app.Close()
		return nil, err
	}
	var traced []server.ServerOption // tool-call spans, joined to an incoming traceparent
	if app.tracer != nil {
		traced = []server.ServerOption{server.WithToolHandlerMiddleware(traceToolCalls(reg, app.tracer)), server.WithPropagator(tracing.IncomingTraceContext{})}
	}
	app.Server = tools.NewServer(reg, tools.ServerOptions{
		Name:         "cosell-mcp",
		Version:      version,
		Instructions: instructions(cfg),
		Policy:       policy,
		Budget: func(ctx context.Context, toolset string) *throttle.Budget {
			if toolset == tools.ToolsetServer || toolset == trtools.Toolset {
				return nil
			}
			return app.Budgets.Lookup(tools.ConnectionName(toolset, tools.Credential(ctx, toolset)))
		},
		Logger:     log,
		Hooks:      hooks,
		OnToolCall: app.Metrics.ObserveTool,
		Extra: append([]server.ServerOption{
			server.WithResourceCapabilities(true, true),
			server.WithPromptCapabilities(false),
			server.WithCompletions(),
			server.WithPromptCompletionProvider(completer),
			server.WithResourceCompletionProvider(completer),
		}, traced...),
	})
	resources.Attach(app.Server)
	enabled := func(toolset string) bool { return len(cfg.Toolsets) == 0 || slices.Contains(cfg.Toolsets, toolset) }
	if err := prompts.Register(app.Server, enabled, cfg.ReadOnly); err != nil {
		app.Close()
		return nil, err
	}
	return app, nil
}

// startTracing exports spans when the OTEL_* environment asks for it
// (tracing.Setup), flushing what is buffered when the app closes, within
// tracing.ShutdownTimeout. While tracing is on (set up here, or installed
// by a test), the app gets its tracer and the returned logger adds trace_id
// and span_id to the records logged inside a span.
func (a *App) startTracing(log *slog.Logger) (*slog.Logger, error) {
	exp, err := tracing.Setup(context.Background(), version)
	if err != nil {
		return nil, err
	}
	if exp != nil {
		a.closers = append(a.closers, func() {
			ctx, cancel := context.WithTimeout(context.Background(), tracing.ShutdownTimeout)
			defer cancel()
			if err := exp.Shutdown(ctx); err != nil {
				log.Warn("spans not flushed on exit", "error", err)
			}
		})
		log.Info("tracing on: spans go to an OTLP/HTTP collector", "collector", exp.Endpoint, "service", exp.Service)
	}
	if !tracing.Enabled() {
		return log, nil
	}
	a.tracer = tracing.Tracer()
	return slog.New(tracing.WithTraceIDs(log.Handler())), nil
}

// traceToolCalls is the tool middleware that runs every call in its span
// (tracing.StartToolCall): the tool, its toolset, the hashed session and
// the outcome — never an argument.
func traceToolCalls(reg *tools.Registry, tracer trace.Tracer) server.ToolHandlerMiddleware {
	return func(next server.ToolHandlerFunc) server.ToolHandlerFunc {
		return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			call := tracing.ToolCall{Name: req.Params.Name}
			if t, ok := reg.Lookup(call.Name); ok {
				call.Toolset = t.Toolset
			}
			if s := server.ClientSessionFromContext(ctx); s != nil {
				call.Session = s.SessionID()
			}
			ctx, end := tracing.StartToolCall(ctx, tracer, call)
			defer func() {
				if r := recover(); r != nil {
					end("internal")
					panic(r) // for server.WithRecovery
				}
			}()
			res, err := next(ctx, req)
			end(toolOutcome(res, err))
			return res, err
		}
	}
}

// toolOutcome is the error code a tool call's caller received ("" for a
// success): the code of an isError result's {"error":{...}} body, or
// "internal" for a Go error (a bug, see tools.AsError).
func toolOutcome(res *mcp.CallToolResult, err error) string {
	if err != nil || res == nil {
		return "internal"
	}
	if !res.IsError {
		return ""
	}
	var body struct {
		Error tools.Error `json:"error"`
	}
	if len(res.Content) > 0 {
		if tc, ok := res.Content[0].(mcp.TextContent); ok && json.Unmarshal([]byte(tc.Text), &body) == nil && body.Error.Code != "" {
			return body.Error.Code
		}
	}
	return "error"
}

// removeStaleTempFiles deletes the temporary folders a killed server left
// behind while parsing a workbook.
func removeStaleTempFiles(log *slog.Logger) {
	n, err := bulkfile.RemoveStaleTempFiles()
	if err != nil {
		log.Warn("could not remove stale temporary files", "error", err)
	}
	if n > 0 {
		log.Info("removed temporary folders left by an earlier run", "folders", n)
	}
}

// startTriggers opens the event store, starts the webhook listener and the
// trigger manager, and restores the triggers that were active.
func (a *App) startTriggers(cfg Config, log *slog.Logger, hooks *server.Hooks, clients trtools.Clients) (*trtools.Resources, error) {
	st, cluster, err := openStateStore(cfg)
	if err != nil {
		return nil, err
	}
	a.closers = append(a.closers, func() { _ = st.Close() })
	ln, err := net.Listen("tcp", cfg.WebhookListen)
	if err != nil {
		return nil, fmt.Errorf("webhook listener: %w", err)
	}
	public := cfg.PublicURL
	if public == "" {
		public = "http://" + ln.Addr().String()
	}
	resources := trtools.NewResources(log)
	resources.SetAccess(trtools.Access{Toolsets: cfg.Toolsets, ReadOnly: cfg.ReadOnly})
	resources.Hook(hooks)
	opts := triggers.Options{PublicURL: public, Logger: log, Notify: resources.Notify, MaxPerOwner: cfg.MaxTriggersPerCaller,
		ScopeOf: func(ctx context.Context, connector string) triggers.Scope {
			return triggers.Scope{Owner: principalName(ctx), Secret: tools.Credential(ctx, connector)}
		},
		WithSecret: tools.WithCredential,
	}
	if cfg.StateKey != nil {
		if opts.Box, err = sealed.New(cfg.StateKey); err != nil {
			return nil, err
		}
	}
	if cluster != nil {
		// One replica polls each trigger; events stored by any replica are
		// announced to this one's subscribed sessions through the database.
		opts.Leases, opts.ReplicaID, opts.Notify = cluster, replicaID(), nil
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := cluster.Listen(ctx, resources.Notify); err != nil && ctx.Err() == nil {
				log.Error("new-event notices from other replicas stopped", "error", err)
			}
		}()
		a.closers = append(a.closers, func() { cancel(); <-done })
	}
	a.Triggers = triggers.NewManager(st, trtools.Kinds(clients), opts)
	resources.SetManager(a.Triggers)
	mux := http.NewServeMux()
	mux.Handle("/webhooks/", a.Triggers.WebhookHandler())
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	a.closers = append(a.closers, func() { _ = hs.Close() }, a.Triggers.Close)
	a.Triggers.StartRetention()
	a.Triggers.StartRestore()
	a.Triggers.StartLeases()
	log.Info("webhook listener", "url", public+"/webhooks/", "state", st.Path())
	return resources, nil
}

// openStateStore opens where triggers, events and cursors live: the
// PostgreSQL of --database-url (cluster mode; also returned as the cluster's
// leases and notices), or the embedded SQLite file.
func openStateStore(cfg Config) (store.Backend, *pgstore.Store, error) {
	if cfg.DatabaseURL != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		st, err := pgstore.Open(ctx, cfg.DatabaseURL, store.Options{})
		if err != nil {
			return nil, nil, fmt.Errorf("--database-url: the event store: %w", err)
		}
		return st, st, nil
	}
	st, err := store.Open(cfg.StateDB, store.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("open the state database %s: %w", cfg.StateDB, err)
	}
	return st, nil, nil
}

// replicaID names this process in trigger leases: host and process, and a
// random part for a restart that reuses both.
func replicaID() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s/%d/%x", host, os.Getpid(), b)
}

// principalName names the authenticated principal of a request ("" without
// HTTP auth): whose sessions, triggers and consumers are whose.
func principalName(ctx context.Context) string {
	p, ok := httpauth.PrincipalFrom(ctx)
	if !ok {
		return ""
	}
	return p.Method + ":" + p.Subject
}

// buildRegistry registers every tool of every connector.
func buildRegistry(budgets *throttle.Registry, pd *pdtools.Service, pc pctools.Connection, ws *workspan.Client, wsOpts wstools.Options) *tools.Registry {
	reg := tools.NewRegistry()
	reg.Add(tools.ThrottleStatusTool(budgets))
	reg.Add(pd.Tools()...)
	reg.Add(pctools.Tools(pc)...)
	reg.Add(wstools.Tools(ws, wsOpts)...)
	return reg
}

func wsOptions(cfg Config, budgets *throttle.Registry) wstools.Options {
	return wstools.Options{
		// MCP roots name folders on the client's machine: they widen file
		// access only when the client runs here (stdio), never over HTTP.
		ClientRoots:   cfg.HTTPAddr == "",
		AllowedDirs:   cfg.WorkSpan.AllowedDirs,
		RowsPerUpload: cfg.WorkSpan.RowsPerUpload,
		Budget:        budgets.Budget(wstools.Toolset),
	}
}

// workSpanClient connects WorkSpan: the configured application user, or the
// embedded sandbox.
func (a *App) workSpanClient(cfg Config, log *slog.Logger) (*workspan.Client, error) {
	w := cfg.WorkSpan
	base := w.BaseURL
	if base == "" {
		var err error
		if base, err = workspan.EnvironmentURL(w.Env); err != nil {
			return nil, err
		}
	}
	host, user, secret := w.HostName, w.AppUserID, w.AppUserSecret
	if w.Sandbox {
		root, srv, err := wssandbox.Listen("127.0.0.1:0", cfg.WorkSpanSandbox)
		if err != nil {
			return nil, fmt.Errorf("start the WorkSpan sandbox: %w", err)
		}
		a.closers = append(a.closers, func() { _ = srv.Close(); srv.Handler.(*wssandbox.Server).Close() })
		base, host, user, secret = root, orDefault(cfg.WorkSpanSandbox.HostName, wssandbox.DefaultHostName),
			orDefault(cfg.WorkSpanSandbox.AppUserID, wssandbox.DefaultAppUserID), orDefault(cfg.WorkSpanSandbox.AppUserSecret, wssandbox.DefaultAppUserSecret)
		log.Warn("no WorkSpan credentials are set: WorkSpan runs on the embedded sandbox", "base_url", base)
	}
	return workspan.New(workspan.Config{
		BaseURL: base, HostName: host, AppUserID: user, AppUserSecret: secret,
		HTTPClient: &http.Client{
			Transport: a.transport(wstools.Toolset),
			Timeout:   5 * time.Minute, // uploads of large files
		},
		// WorkSpan's token endpoint is on the API host: its requests spend the same budget.
		TokenHTTPClient: &http.Client{Transport: a.transport(wstools.Toolset), Timeout: upstreamTimeout},
		UserAgent:       "cosell-mcp/" + version,
	}), nil
}

// partnerCenterClient connects Partner Center Referrals: the configured
// credential, or the embedded sandbox (through its own token endpoint).
func (a *App) partnerCenterClient(cfg Config, log *slog.Logger, bounds []tools.CacheOption) (*partnercenter.Client, *tools.Pool[*partnercenter.Client], error) {
	pcc := cfg.PartnerCenter
	base := orDefault(pcc.BaseURL, partnercenter.DefaultBaseURL)
	// Azure AD spends no budget; its requests are traced all the same.
	tokenHTTP := &http.Client{Transport: httpx.Traced(http.DefaultTransport, a.tracer, ""), Timeout: upstreamTimeout}
	var ts partnercenter.TokenSource
	switch {
	case pcc.Sandbox:
		root, srv, err := pcsandbox.Listen("127.0.0.1:0", cfg.PartnerCenterSandbox)
		if err != nil {
			return nil, nil, fmt.Errorf("start the Partner Center sandbox: %w", err)
		}
		a.closers = append(a.closers, func() { _ = srv.Close() })
		sb := srv.Handler.(*pcsandbox.Server)
		base = sb.APIBase(root)
		ts = partnercenter.NewOAuthTokenSource(partnercenter.OAuthConfig{TokenURL: sb.TokenURL(root),
			ClientID: pcsandbox.DefaultClientID, ClientSecret: pcsandbox.DefaultClientSecret, HTTPClient: tokenHTTP})
		log.Warn("no Partner Center credentials are set: Partner Center runs on the embedded sandbox", "base_url", base)
	case pcc.AccessToken != "":
		ts = partnercenter.StaticToken(pcc.AccessToken)
	default:
		oc := partnercenter.OAuthConfig{TokenURL: pcc.TokenURL(), ClientID: pcc.ClientID,
			ClientSecret: pcc.ClientSecret, RefreshToken: pcc.RefreshToken, HTTPClient: tokenHTTP}
		if a.DB != nil {
			// The replicas keep the access token and the rotating refresh
			// token in the database, sealed, and refresh once for the cluster.
			if cfg.StateKey == nil && pcc.RefreshToken != "" {
				return nil, nil, errors.New("--database-url with a Partner Center refresh token needs COSELL_STATE_KEY: the replicas keep the rotating refresh token sealed in the database")
			}
			if cfg.StateKey != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				store, err := tokenstore.Open(ctx, a.DB, cfg.StateKey, tokenstore.Config{})
				cancel()
				if err != nil {
					return nil, nil, fmt.Errorf("--database-url: the OAuth token store: %w", err)
				}
				oc.Store = store
			}
		}
		ts = partnercenter.NewOAuthTokenSource(oc)
	}
	newClient := func(connection string, ts partnercenter.TokenSource) *partnercenter.Client {
		return partnercenter.New(ts,
			partnercenter.WithBaseURL(base),
			partnercenter.WithHTTPClient(&http.Client{Transport: a.transport(connection), Timeout: upstreamTimeout}),
			partnercenter.WithUserAgent("cosell-mcp/"+version),
		)
	}
	c := newClient(pctools.Toolset, ts)
	// A caller's own bearer token (HTTP mode) is used as is.
	pool := tools.NewPool(pctools.Toolset, c, func(connection, token string) *partnercenter.Client {
		return newClient(connection, partnercenter.StaticToken(token))
	}, bounds...)
	return c, pool, nil
}

// staticRegistry is the registry for commands that only describe tools;
// its clients are never called.
func staticRegistry() *tools.Registry {
	budgets := throttle.NewRegistry(throttle.Config{})
	reg := buildRegistry(budgets, pdtools.NewService(pdtools.Static(pipedrive.New(""))), pctools.Static(partnercenter.New(partnercenter.StaticToken(""))),
		workspan.New(workspan.Config{}), wstools.Options{Budget: budgets.Budget(wstools.Toolset)})
	reg.Add(trtools.Tools(nil, nil)...)
	reg.Add(tools.ConnectionStatusTool(nil))
	return reg
}

// upstreamFailure is the last failed upstream exchange of a connection.
type upstreamFailure struct {
	Status int
	At     time.Time
}

// transport is the HTTP chain of one connection: budget, retries, metrics
// and the last failure for connection_status. A caller's own connection
// finds its budget per request, so a budget exists only while requests
// leave, and a full registry refuses the request instead of growing.
func (a *App) transport(connection string) http.RoundTripper {
	opts := httpx.Options{MaxPause: a.maxPause, Tracer: a.tracer, Observe: func(status int, waited time.Duration) {
		a.Metrics.ObserveUpstream(connection, status, waited)
		if status == 0 || status >= 400 {
			a.lastError.Put(connection, upstreamFailure{Status: status, At: time.Now().UTC()})
		}
	}}
	if _, caller := throttle.CallerConnection(connection); !caller {
		return httpx.ChainWith(a.Budgets.Budget(connection), http.DefaultTransport, opts)
	}
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		b, err := a.Budgets.Get(connection)
		if err != nil {
			if req.Body != nil {
				_ = req.Body.Close()
			}
			return nil, err
		}
		return httpx.ChainWith(b, http.DefaultTransport, opts).RoundTrip(req)
	})
}

// roundTripFunc is an http.RoundTripper from a function.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// connectionReport gathers connection_status for the caller's connections.
func (a *App) connectionReport(cfg Config, pd pdtools.Connection, endpoints map[string]string) func(ctx context.Context) ([]tools.ConnectionInfo, error) {
	sandbox := map[string]bool{pdtools.Toolset: cfg.Sandbox, pctools.Toolset: cfg.PartnerCenter.Sandbox, wstools.Toolset: cfg.WorkSpan.Sandbox}
	return func(ctx context.Context) ([]tools.ConnectionInfo, error) {
		active, _ := a.Triggers.Active(ctx)
		var out []tools.ConnectionInfo
		for _, connector := range []string{pdtools.Toolset, pctools.Toolset, wstools.Toolset} {
			name := tools.ConnectionName(connector, tools.Credential(ctx, connector))
			info := tools.ConnectionInfo{Connector: connector, Mode: "live", Endpoint: endpoints[connector]}
			if connector == pdtools.Toolset {
				if me, err := pd(ctx).Me(ctx); err == nil {
					info.Account = fmt.Sprintf("%s <%s>", me.Name, me.Email)
				}
			}
			info.Budget = tools.BudgetOf(a.Budgets.Status(name))
			if sandbox[connector] && tools.Credential(ctx, connector) == "" {
				info.Mode = "sandbox"
			}
			if f, ok := a.lastError.Get(name); ok {
				info.LastError = fmt.Sprintf("HTTP %d", f.Status)
				if f.Status == 0 {
					info.LastError = "no reply (network error or timeout)"
				}
				info.LastErrorAt = f.At.Format(time.RFC3339)
			}
			for _, t := range active {
				if strings.HasPrefix(t.Kind, connector+".") {
					info.ActiveTriggers++
				}
			}
			out = append(out, info)
		}
		return out, nil
	}
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// instructions is the short guide returned at initialize.
func instructions(cfg Config) string {
	var b strings.Builder
	b.WriteString("cosell-mcp works the co-sell pipeline. Pipedrive: find a deal with pipedrive_search_deals " +
		"(title or organization name) or pipedrive_list_deals (filters, cursor paging: pass next_cursor back while has_more); " +
		"get stage/pipeline ids from pipedrive_list_pipelines; then pipedrive_update_deal (value, close date, custom fields by name), " +
		"pipedrive_update_deal_stage, pipedrive_update_deal_status (lost_reason only with lost); customers: pipedrive_search_organizations/_persons, " +
		"then _add_/_update_; notes and activities: pipedrive_add_note, pipedrive_list_activities, pipedrive_update_activity (done=true). " +
		"List tools take fields to keep only the row fields you need. " +
		"Partner Center: partnercenter_list_referrals (filters compile to OData; compact rows, full=true for records), " +
		"partnercenter_get_referral, then update tools that need the referral's etag from the last read; " +
		"a conflict error means someone changed it: re-read. Status moves: New→Active(Accepted)→Closed(Won/Lost); New→Closed(Declined); Closed is final. " +
		"WorkSpan: workspan_list_integrations gives integration ids and the columns each load takes; bulk loads (inline data, a file path, or base64) are validated locally before upload; " +
		"follow them with workspan_get_bulk_load_status (wait=true); link objects with workspan_connect_external_id and workspan_add_audit. " +
		"Triggers are resources (templates in resources/templates/list, e.g. pipedrive://triggers/new-deals): subscribe to start one and be notified, " +
		"read it for events after your cursor; without resource support use trigger_list, trigger_start, trigger_read_events, trigger_stop. ")
	fmt.Fprintf(&b, "Each connection may make %d upstream calls per %s; every result's _meta.budget shows what remains, "+
		"throttle_status shows all; a throttled error says retry_after_seconds. Errors are JSON {\"error\":{\"code\",\"message\"}}; "+
		"invalid_argument errors cost no budget; outcome_unknown means a create may have happened: check before retrying.", cfg.BudgetLimit, cfg.BudgetWindow)
	var sandboxes []string
	for _, c := range []struct {
		name    string
		sandbox bool
	}{{"Pipedrive", cfg.Sandbox}, {"Partner Center", cfg.PartnerCenter.Sandbox}, {"WorkSpan", cfg.WorkSpan.Sandbox}} {
		if c.sandbox {
			sandboxes = append(sandboxes, c.name)
		}
	}
	if len(sandboxes) > 0 {
		fmt.Fprintf(&b, " SANDBOX MODE for %s: no credentials are set, so these run on embedded sandboxes with sample data; nothing real changes.",
			strings.Join(sandboxes, ", "))
	}
	b.WriteString(" connection_status tells which connectors are live, whose account they use and their last error.")
	if cfg.ReadOnly {
		b.WriteString(" Read-only mode: tools that change data are refused.")
	}
	return b.String()
}

// sharedLedger connects the budget ledger of --database-url, which every
// replica of a cluster spends from; nil without one.
func (a *App) sharedLedger(cfg Config, log *slog.Logger) (throttle.Shared, error) {
	if cfg.DatabaseURL == "" {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("--database-url: %w", err)
	}
	l, err := ledger.Open(ctx, pool, ledger.Config{Limit: cfg.BudgetLimit, Window: cfg.BudgetWindow, MaxInFlight: upstreamTimeout})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("--database-url: the budget ledger: %w", err)
	}
	a.closers = append(a.closers, pool.Close)
	a.DB = pool
	log.Info("budget shared through PostgreSQL", "database", redactedURL(cfg.DatabaseURL))
	return l.Shared(), nil
}

// redactedURL is a database URL without its password, for logs.
func redactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.Redacted()
}
