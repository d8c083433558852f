package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	pcsandbox "github.com/cosell-mcp/cosell-mcp/connectors/partnercenter/sandbox"
	pdsandbox "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive/sandbox"
	wssandbox "github.com/cosell-mcp/cosell-mcp/connectors/workspan/sandbox"
	"github.com/cosell-mcp/cosell-mcp/internal/sealed"
	"github.com/cosell-mcp/cosell-mcp/internal/store"
)

// Config is everything the server needs, from flags and the environment.
// Secrets come only from the environment (NAME or NAME_FILE), never flags.
type Config struct {
	Toolsets []string
	// Tools is the --tools allow-list of tool names; empty means every
	// tool the toolsets and read-only mode leave.
	Tools             []string
	toolNames         *string
	allowedDirs       *string
	ReadOnly          bool
	IncludeDeprecated bool
	LogLevel          string
	LogFormat         string // text or json (--log-format); newApp refuses any other

	BudgetLimit   int
	BudgetWindow  time.Duration
	BudgetMaxWait time.Duration

	PipedriveToken   string
	PipedriveBaseURL string
	// Sandbox is true when no Pipedrive token is configured.
	Sandbox bool
	// PipedriveSandbox configures the embedded sandbox (tests and benchmarks).
	PipedriveSandbox pdsandbox.Options

	PartnerCenter PartnerCenterConfig
	// PartnerCenterSandbox configures the embedded sandbox (tests and benchmarks).
	PartnerCenterSandbox pcsandbox.Options

	// HTTPAddr serves streamable HTTP instead of stdio when set.
	HTTPAddr string
	// HTTPPublicURL is how clients reach the HTTP endpoint when that is not
	// its bind address (behind a TLS proxy); see PublicHTTPURL.
	HTTPPublicURL string
	// APIKeysFile lists hashed API keys ("name sha256:hex" per line).
	APIKeysFile string
	// JWT* configure OAuth 2.1 resource-server mode.
	JWTIssuer, JWTAudience, JWTJWKSURL string
	// AllowedOrigins may call the HTTP endpoint from a browser.
	AllowedOrigins []string
	allowedOrigins *string

	// StateDB is the SQLite file of triggers and events.
	StateDB string
	// WebhookListen is the address of the webhook listener; PublicURL how upstreams reach it.
	WebhookListen, PublicURL string
	// PollInterval overrides the 120 s polling pace of trigger pollers (0 keeps it).
	PollInterval time.Duration
	// StateKey (COSELL_STATE_KEY, 32 bytes) seals callers' own credentials
	// kept with their triggers; nil refuses such triggers.
	StateKey []byte
	// MaxTriggersPerCaller caps one principal's active triggers over HTTP.
	MaxTriggersPerCaller int
	// MaxConnections caps the callers' own connections (budgets, clients,
	// caches); ConnectionIdleTTL drops an idle one.
	MaxConnections    int
	ConnectionIdleTTL time.Duration
	// MetricsAuth makes /metrics require the same bearer as /mcp.
	MetricsAuth bool
	// MaxUpstreamPause caps the pause an upstream's Retry-After or rate-limit
	// reset may impose on a connection; 0 means one budget window.
	MaxUpstreamPause time.Duration
	// DatabaseURL (COSELL_DATABASE_URL, postgres://…) puts the state every
	// replica of a cluster shares in PostgreSQL: the budget ledger,
	// triggers and events, MCP sessions, OAuth tokens.
	DatabaseURL string
	// SessionIdleTTL ends an MCP session (HTTP) unused this long.
	SessionIdleTTL time.Duration

	WorkSpan WorkSpanConfig
	// WorkSpanSandbox configures the embedded sandbox (tests and benchmarks).
	WorkSpanSandbox wssandbox.Options
}

// WorkSpanConfig is the WorkSpan connection and the bulk-load settings.
type WorkSpanConfig struct {
	Env           string
	BaseURL       string
	HostName      string
	AppUserID     string
	AppUserSecret string
	AllowedDirs   []string
	RowsPerUpload int
	// Sandbox is true when no application user is configured.
	Sandbox bool
}

// PartnerCenterConfig is the Partner Center Referrals connection: a static
// bearer token, or an Azure AD app (client credentials, or a refresh token).
type PartnerCenterConfig struct {
	BaseURL      string
	Authority    string
	Tenant       string
	AccessToken  string
	ClientID     string
	ClientSecret string
	RefreshToken string
	// Sandbox is true when no credential is configured.
	Sandbox bool
}

// TokenURL is the Azure AD v2 token endpoint of the configured tenant.
func (p PartnerCenterConfig) TokenURL() string {
	return strings.TrimRight(p.Authority, "/") + "/" + p.Tenant + "/oauth2/v2.0/token"
}

// secretFromEnv reads NAME, or the file named by NAME_FILE.
func secretFromEnv(name string) (string, error) {
	if v := os.Getenv(name); v != "" {
		return strings.TrimSpace(v), nil
	}
	if path := os.Getenv(name + "_FILE"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("%s_FILE: %w", name, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	return "", nil
}

// bindFlags registers the server flags on fs. A flag whose usage ends in
// "[NAME]" takes its default from the environment variable NAME, read by
// the flag's own parser when parseFlags runs (see envparse.go).
func bindFlags(fs *flag.FlagSet, c *Config) *string {
	toolsets := fs.String("toolsets", "", "comma-separated toolsets to enable (default all) [COSELL_TOOLSETS]")
	c.toolNames = fs.String("tools", "", "comma-separated tool names to enable, within --toolsets and --read-only (default all; mcp-server tools lists them) [COSELL_TOOLS]")
	fs.BoolVar(&c.ReadOnly, "read-only", false, "refuse every tool that changes data [COSELL_READ_ONLY]")
	fs.BoolVar(&c.IncludeDeprecated, "include-deprecated", false, "list deprecated connector actions too [COSELL_INCLUDE_DEPRECATED]")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error; logs go to stderr [COSELL_LOG_LEVEL]")
	fs.StringVar(&c.LogFormat, "log-format", "text", "text or json (one object per line, with trace_id and span_id inside traced tool calls) [COSELL_LOG_FORMAT]")
	fs.IntVar(&c.BudgetLimit, "budget-limit", 100, "upstream requests per window per connection [COSELL_BUDGET_LIMIT]")
	fs.DurationVar(&c.BudgetWindow, "budget-window", 60*time.Second, "rolling throttle window [COSELL_BUDGET_WINDOW]")
	fs.DurationVar(&c.BudgetMaxWait, "budget-max-wait", 30*time.Second, "longest a tool call waits for budget before a throttled error [COSELL_BUDGET_MAX_WAIT]")
	fs.StringVar(&c.PipedriveBaseURL, "pipedrive-base-url", "", "Pipedrive API host, e.g. https://acme.pipedrive.com (default https://api.pipedrive.com) [PIPEDRIVE_BASE_URL]")
	fs.StringVar(&c.PartnerCenter.BaseURL, "partnercenter-base-url", "", "Partner Center engagements API base (default https://api.partner.microsoft.com/v1.0/engagements) [PARTNERCENTER_BASE_URL]")
	fs.StringVar(&c.PartnerCenter.Authority, "partnercenter-authority", "https://login.microsoftonline.com", "Azure AD authority for Partner Center tokens [PARTNERCENTER_AUTHORITY]")
	fs.StringVar(&c.PartnerCenter.Tenant, "partnercenter-tenant", "organizations", "Azure AD tenant id or domain [PARTNERCENTER_TENANT_ID]")
	fs.StringVar(&c.PartnerCenter.ClientID, "partnercenter-client-id", "", "Azure AD application (client) id [PARTNERCENTER_CLIENT_ID]")
	fs.StringVar(&c.WorkSpan.Env, "workspan-env", "production", "WorkSpan environment: production or sandbox [WORKSPAN_ENV]")
	fs.StringVar(&c.WorkSpan.BaseURL, "workspan-base-url", "", "WorkSpan API base URL, overriding --workspan-env [WORKSPAN_BASE_URL]")
	fs.StringVar(&c.WorkSpan.HostName, "workspan-hostname", "", "WorkSpan host name sent as x-ws-env, e.g. app.workspan.com [WORKSPAN_HOSTNAME]")
	fs.StringVar(&c.WorkSpan.AppUserID, "workspan-app-user-id", "", "WorkSpan application user id [WORKSPAN_APP_USER_ID]")
	fs.IntVar(&c.WorkSpan.RowsPerUpload, "workspan-rows-per-upload", 5000, "bulk inputs larger than this are split into several executions [WORKSPAN_ROWS_PER_UPLOAD]")
	fs.StringVar(&c.HTTPAddr, "http", "", "serve MCP over streamable HTTP on this address (e.g. 127.0.0.1:8080) instead of stdio [COSELL_HTTP_ADDR]")
	fs.StringVar(&c.HTTPPublicURL, "http-public-url", "", "base URL clients use to reach the HTTP endpoint, e.g. https://mcp.example.com behind a proxy (default http://<--http address>) [COSELL_HTTP_PUBLIC_URL]")
	fs.StringVar(&c.APIKeysFile, "api-keys-file", "", "file of hashed API keys for HTTP bearer auth, one \"name sha256:<hex>\" per line (mcp-server hash-key KEY prints one) [COSELL_API_KEYS_FILE]")
	fs.StringVar(&c.JWTIssuer, "jwt-issuer", "", "OAuth issuer whose JWT access tokens are accepted over HTTP [COSELL_JWT_ISSUER]")
	fs.StringVar(&c.JWTAudience, "jwt-audience", "", "audience the JWTs must carry [COSELL_JWT_AUDIENCE]")
	fs.StringVar(&c.JWTJWKSURL, "jwt-jwks-url", "", "the issuer's JWKS URL [COSELL_JWT_JWKS_URL]")
	c.allowedOrigins = fs.String("allowed-origins", "", "comma-separated browser origins allowed to call the HTTP endpoint [COSELL_ALLOWED_ORIGINS]")
	fs.StringVar(&c.DatabaseURL, "database-url", "", "PostgreSQL URL (postgres://…) holding what the replicas of a cluster share: the budget ledger, triggers and events, MCP sessions, OAuth tokens; without it, state stays in this process and --state-db [COSELL_DATABASE_URL]")
	fs.DurationVar(&c.SessionIdleTTL, "session-idle-ttl", 30*time.Minute, "an MCP session (HTTP) unused this long ends; every replica of a cluster must use the same [COSELL_SESSION_IDLE_TTL]")
	fs.StringVar(&c.StateDB, "state-db", "", "SQLite file of triggers and events (default under the user's state directory, or COSELL_STATE_DIR) [COSELL_STATE_DB]")
	fs.StringVar(&c.WebhookListen, "webhook-listen", "127.0.0.1:0", "address of the webhook listener [COSELL_WEBHOOK_LISTEN]")
	fs.StringVar(&c.PublicURL, "public-url", "", "URL upstreams post webhooks to (default the listener's own address) [COSELL_PUBLIC_URL]")
	fs.IntVar(&c.MaxTriggersPerCaller, "max-triggers-per-caller", 20, "active triggers one HTTP principal may have [COSELL_MAX_TRIGGERS_PER_CALLER]")
	fs.IntVar(&c.MaxConnections, "max-connections", 1000, "callers' own upstream connections (budgets, clients, caches) kept at once [COSELL_MAX_CONNECTIONS]")
	fs.DurationVar(&c.ConnectionIdleTTL, "connection-idle-ttl", 10*time.Minute, "a caller's own connection idle this long is dropped [COSELL_CONNECTION_IDLE_TTL]")
	fs.BoolVar(&c.MetricsAuth, "metrics-auth", true, "with HTTP auth on, /metrics needs the same bearer as /mcp [COSELL_METRICS_AUTH]")
	fs.DurationVar(&c.MaxUpstreamPause, "max-upstream-pause", 0, "longest pause an upstream Retry-After may impose on a connection (default one budget window) [COSELL_MAX_UPSTREAM_PAUSE]")
	fs.DurationVar(&c.PollInterval, "poll-interval", 0, "trigger polling pace (default the connectors' 120s) [COSELL_POLL_INTERVAL]")
	allowed := fs.String("allowed-dirs", "", "folders file inputs may be read from, separated by "+string(os.PathListSeparator)+" [COSELL_ALLOWED_DIRS]")
	c.allowedDirs = allowed
	return toolsets
}

// finish completes the config after flag parsing: secrets and checks.
func (c *Config) finish(toolsets string) error {
	var err error
	if c.Toolsets, err = parseNames(toolsets); err != nil {
		return fmt.Errorf("--toolsets: %w", err)
	}
	if c.toolNames != nil {
		if c.Tools, err = parseNames(*c.toolNames); err != nil {
			return fmt.Errorf("--tools: %w", err)
		}
	}
	if err := new(slog.Level).UnmarshalText([]byte(c.LogLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel)
	}
	if c.BudgetLimit < 1 {
		return errors.New("--budget-limit must be at least 1")
	}
	if c.BudgetWindow <= 0 {
		return errors.New("--budget-window must be positive")
	}
	if c.SessionIdleTTL <= 0 {
		return errors.New("--session-idle-ttl must be positive")
	}
	if c.MaxTriggersPerCaller < 1 || c.MaxConnections < 1 || c.ConnectionIdleTTL <= 0 || c.MaxUpstreamPause < 0 {
		return errors.New("--max-triggers-per-caller and --max-connections must be at least 1, --connection-idle-ttl positive, --max-upstream-pause not negative")
	}
	stateKey, err := secretFromEnv("COSELL_STATE_KEY")
	if err != nil {
		return err
	}
	if stateKey != "" {
		if c.StateKey, err = sealed.ParseKey(stateKey); err != nil {
			return fmt.Errorf("COSELL_STATE_KEY: %w", err)
		}
	}
	tok, err := secretFromEnv("PIPEDRIVE_API_TOKEN")
	if err != nil {
		return err
	}
	c.PipedriveToken = tok
	c.Sandbox = tok == ""
	if err := c.PartnerCenter.finish(); err != nil {
		return err
	}
	if c.allowedOrigins != nil {
		for _, o := range strings.Split(*c.allowedOrigins, ",") {
			if o = strings.TrimSpace(o); o != "" {
				c.AllowedOrigins = append(c.AllowedOrigins, o)
			}
		}
	}
	if c.allowedDirs != nil {
		c.WorkSpan.AllowedDirs = filepath.SplitList(*c.allowedDirs)
	}
	if err := c.WorkSpan.finish(); err != nil {
		return err
	}
	if c.StateDB == "" {
		p, err := store.DefaultPath()
		if err != nil {
			return fmt.Errorf("state database: %w (set --state-db)", err)
		}
		c.StateDB = p
	}
	// A poller may spend at most a tenth of its connection's budget.
	if floor := c.BudgetWindow * 10 / time.Duration(c.BudgetLimit); c.PollInterval != 0 && c.PollInterval < floor {
		return fmt.Errorf("--poll-interval %s is faster than the budget allows (%d per %s): at least %s", c.PollInterval, c.BudgetLimit, c.BudgetWindow, floor)
	}
	if c.HTTPPublicURL != "" {
		u, err := url.Parse(c.HTTPPublicURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("--http-public-url %q: want an absolute http(s) URL without query or fragment, e.g. https://mcp.example.com", c.HTTPPublicURL)
		}
		c.HTTPPublicURL = strings.TrimSuffix(u.String(), "/")
	}
	if c.Sandbox && c.PipedriveBaseURL != "" {
		return errors.New("PIPEDRIVE_BASE_URL is set but PIPEDRIVE_API_TOKEN is not: set the token (or PIPEDRIVE_API_TOKEN_FILE), or unset the URL to use the sandbox")
	}
	return nil
}

func (p *PartnerCenterConfig) finish() error {
	var err error
	for name, dst := range map[string]*string{
		"PARTNERCENTER_ACCESS_TOKEN":  &p.AccessToken,
		"PARTNERCENTER_CLIENT_SECRET": &p.ClientSecret,
		"PARTNERCENTER_REFRESH_TOKEN": &p.RefreshToken,
	} {
		if *dst, err = secretFromEnv(name); err != nil {
			return err
		}
	}
	p.Sandbox = p.AccessToken == "" && p.ClientID == ""
	switch {
	case p.Sandbox && (p.ClientSecret != "" || p.RefreshToken != ""):
		return errors.New("PARTNERCENTER_CLIENT_SECRET or PARTNERCENTER_REFRESH_TOKEN is set without PARTNERCENTER_CLIENT_ID")
	case p.Sandbox && p.BaseURL != "":
		return errors.New("PARTNERCENTER_BASE_URL is set but no Partner Center credential is: set PARTNERCENTER_ACCESS_TOKEN or PARTNERCENTER_CLIENT_ID with a secret or refresh token, or unset the URL to use the sandbox")
	case p.ClientID != "" && p.AccessToken == "" && p.ClientSecret == "" && p.RefreshToken == "":
		return errors.New("PARTNERCENTER_CLIENT_ID needs PARTNERCENTER_CLIENT_SECRET (client credentials) or PARTNERCENTER_REFRESH_TOKEN (delegated app+user)")
	}
	return nil
}

func (w *WorkSpanConfig) finish() error {
	secret, err := secretFromEnv("WORKSPAN_APP_USER_SECRET")
	if err != nil {
		return err
	}
	w.AppUserSecret = secret
	w.Sandbox = w.AppUserID == ""
	switch {
	case w.Sandbox && (secret != "" || w.BaseURL != ""):
		return errors.New("WORKSPAN_APP_USER_SECRET or WORKSPAN_BASE_URL is set without WORKSPAN_APP_USER_ID")
	case !w.Sandbox && secret == "":
		return errors.New("WORKSPAN_APP_USER_ID needs WORKSPAN_APP_USER_SECRET (or WORKSPAN_APP_USER_SECRET_FILE)")
	case !w.Sandbox && w.HostName == "":
		return errors.New("WORKSPAN_HOSTNAME (sent as x-ws-env, e.g. app.workspan.com) is required with WorkSpan credentials")
	case w.Env != "production" && w.Env != "sandbox":
		return fmt.Errorf("--workspan-env must be production or sandbox, not %q", w.Env)
	case w.RowsPerUpload < 1:
		return errors.New("--workspan-rows-per-upload must be at least 1")
	}
	var dirs []string
	for _, d := range w.AllowedDirs {
		if d = strings.TrimSpace(d); d != "" {
			abs, err := filepath.Abs(d)
			if err != nil {
				return fmt.Errorf("allowed dir %q: %w", d, err)
			}
			dirs = append(dirs, abs)
		}
	}
	w.AllowedDirs = dirs
	return nil
}
