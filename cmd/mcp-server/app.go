package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/cosell-mcp/cosell-mcp/connectors/partnercenter"
	pcsandbox "github.com/cosell-mcp/cosell-mcp/connectors/partnercenter/sandbox"
	"github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
	pdsandbox "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive/sandbox"
	"github.com/cosell-mcp/cosell-mcp/internal/httpx"
	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
	"github.com/cosell-mcp/cosell-mcp/tools"
	pctools "github.com/cosell-mcp/cosell-mcp/tools/partnercenter"
	pdtools "github.com/cosell-mcp/cosell-mcp/tools/pipedrive"
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
	closers  []func()
}

// Close stops embedded sandboxes.
func (a *App) Close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
}

// newApp wires connectors, budgets and tools into an MCP server.
func newApp(cfg Config, log *slog.Logger) (*App, error) {
	app := &App{Budgets: throttle.NewRegistry(throttle.Config{Limit: cfg.BudgetLimit, Window: cfg.BudgetWindow, MaxWait: cfg.BudgetMaxWait})}

	pdBase, pdToken := cfg.PipedriveBaseURL, cfg.PipedriveToken
	if cfg.Sandbox {
		base, srv, err := pdsandbox.Listen("127.0.0.1:0", cfg.PipedriveSandbox)
		if err != nil {
			return nil, fmt.Errorf("start the Pipedrive sandbox: %w", err)
		}
		app.closers = append(app.closers, func() { _ = srv.Close() })
		pdBase, pdToken = base, pdsandbox.DefaultToken
		log.Warn("PIPEDRIVE_API_TOKEN is not set: Pipedrive runs on the embedded sandbox", "base_url", base)
	}
	pdClient := pipedrive.New(pdToken,
		pipedrive.WithBaseURL(orDefault(pdBase, pipedrive.DefaultBaseURL)),
		pipedrive.WithHTTPClient(&http.Client{
			Transport: httpx.Chain(app.Budgets.Budget(pdtools.Toolset), http.DefaultTransport),
			Timeout:   upstreamTimeout,
		}),
		pipedrive.WithUserAgent("cosell-mcp/"+version),
	)

	pcClient, err := app.partnerCenterClient(cfg, log)
	if err != nil {
		app.Close()
		return nil, err
	}

	reg := buildRegistry(app.Budgets, pdClient, pcClient)
	app.Registry = reg

	policy := tools.Policy{Toolsets: cfg.Toolsets, ReadOnly: cfg.ReadOnly, IncludeDeprecated: cfg.IncludeDeprecated}
	if err := policy.Validate(reg); err != nil {
		app.Close()
		return nil, err
	}
	app.Server = tools.NewServer(reg, tools.ServerOptions{
		Name:         "cosell-mcp",
		Version:      version,
		Instructions: instructions(cfg),
		Policy:       policy,
		Budget: func(_ context.Context, toolset string) *throttle.Budget {
			if toolset == tools.ToolsetServer {
				return nil
			}
			return app.Budgets.Budget(toolset)
		},
		Logger: log,
	})
	return app, nil
}

// buildRegistry registers every tool of every connector.
func buildRegistry(budgets *throttle.Registry, pd *pipedrive.Client, pc *partnercenter.Client) *tools.Registry {
	reg := tools.NewRegistry()
	reg.Add(tools.ThrottleStatusTool(budgets))
	reg.Add(pdtools.Tools(pd)...)
	reg.Add(pctools.Tools(pc)...)
	return reg
}

// partnerCenterClient connects Partner Center Referrals: the configured
// credential, or the embedded sandbox (through its own token endpoint).
func (a *App) partnerCenterClient(cfg Config, log *slog.Logger) (*partnercenter.Client, error) {
	pcc := cfg.PartnerCenter
	base := orDefault(pcc.BaseURL, partnercenter.DefaultBaseURL)
	tokenHTTP := &http.Client{Timeout: upstreamTimeout}
	var ts partnercenter.TokenSource
	switch {
	case pcc.Sandbox:
		root, srv, err := pcsandbox.Listen("127.0.0.1:0", cfg.PartnerCenterSandbox)
		if err != nil {
			return nil, fmt.Errorf("start the Partner Center sandbox: %w", err)
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
		ts = partnercenter.NewOAuthTokenSource(partnercenter.OAuthConfig{TokenURL: pcc.TokenURL(),
			ClientID: pcc.ClientID, ClientSecret: pcc.ClientSecret, RefreshToken: pcc.RefreshToken, HTTPClient: tokenHTTP})
	}
	return partnercenter.New(ts,
		partnercenter.WithBaseURL(base),
		partnercenter.WithHTTPClient(&http.Client{
			Transport: httpx.Chain(a.Budgets.Budget(pctools.Toolset), http.DefaultTransport),
			Timeout:   upstreamTimeout,
		}),
		partnercenter.WithUserAgent("cosell-mcp/"+version),
	), nil
}

// staticRegistry is the registry for commands that only describe tools;
// its clients are never called.
func staticRegistry() *tools.Registry {
	return buildRegistry(throttle.NewRegistry(throttle.Config{}), pipedrive.New(""), partnercenter.New(partnercenter.StaticToken("")))
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
		"get stage/pipeline ids from pipedrive_list_pipelines; then pipedrive_update_deal_stage, pipedrive_update_deal_status " +
		"(lost_reason only with lost) and pipedrive_add_activity. " +
		"Partner Center: partnercenter_list_referrals (filters compile to OData; compact rows, full=true for records), " +
		"partnercenter_get_referral, then update tools that need the referral's etag from the last read; " +
		"a conflict error means someone changed it: re-read. Status moves: New→Active(Accepted)→Closed(Won/Lost); New→Closed(Declined); Closed is final. ")
	fmt.Fprintf(&b, "Each connection may make %d upstream calls per %s; every result's _meta.budget shows what remains, "+
		"throttle_status shows all; a throttled error says retry_after_seconds. Errors are JSON {\"error\":{\"code\",\"message\"}}; "+
		"invalid_argument errors cost no budget.", cfg.BudgetLimit, cfg.BudgetWindow)
	if cfg.Sandbox {
		b.WriteString(" SANDBOX MODE: no Pipedrive credentials are set, so Pipedrive is an embedded fake company with sample data; nothing real changes.")
	}
	if cfg.PartnerCenter.Sandbox {
		b.WriteString(" SANDBOX MODE: no Partner Center credentials are set, so referrals come from an embedded sandbox.")
	}
	if cfg.ReadOnly {
		b.WriteString(" Read-only mode: tools that change data are refused.")
	}
	return b.String()
}
