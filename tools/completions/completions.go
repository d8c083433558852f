// Package completions answers completion/complete for prompt arguments and
// resource-template parameters from cached reference data: pipelines and
// stages, WorkSpan integrations and events, referral statuses and recent
// referral ids. Each list costs at most one upstream call per cache period
// and connection: lists are cached per connection (the caller's own
// credential, or the server's), so one caller never sees another's.
package completions

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	pc "github.com/cosell-mcp/cosell-mcp/connectors/partnercenter"
	pd "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
	ws "github.com/cosell-mcp/cosell-mcp/connectors/workspan"
	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/tools"
	pctools "github.com/cosell-mcp/cosell-mcp/tools/partnercenter"
	pdtools "github.com/cosell-mcp/cosell-mcp/tools/pipedrive"
	wstools "github.com/cosell-mcp/cosell-mcp/tools/workspan"
)

// cacheFor is how long a fetched list is served.
const cacheFor = 5 * time.Minute

// maxValues is the protocol's limit per completion.
const maxValues = 100

// Provider completes prompt and resource arguments by name.
type Provider struct {
	Pipedrive     func(ctx context.Context) *pd.Client
	PartnerCenter func(ctx context.Context) *pc.Client
	WorkSpan      *ws.Client
	// Clock tells the age of cached lists and how long a connection's lists
	// have been unused (nil: the real clock).
	Clock clock.Clock
	// MaxConnections caps the connections whose lists are cached, the least
	// recently used making room (default tools.DefaultMaxConnections).
	MaxConnections int
	// IdleTTL drops the lists of a connection unused for that long (default
	// tools.DefaultConnectionIdleTTL).
	IdleTTL time.Duration

	once  sync.Once
	lists *tools.IdleCache[string, *lists] // by connection
}

// lists are the cached lists of one connection, by list name.
type lists struct {
	mu sync.Mutex
	m  map[string]cached
}

type cached struct {
	values []string
	at     time.Time
}

// Static value lists.
var static = map[string][]string{
	"status":        {"New", "Active", "Closed"},
	"substatus":     {"Pending", "Received", "Accepted", "Won", "Lost", "Declined", "Expired"},
	"qualification": {"Direct", "MarketingQualified", "SalesQualified"},
	"direction":     {"Incoming", "Outgoing"},
}

// CompletePromptArgument implements server.PromptCompletionProvider.
func (p *Provider) CompletePromptArgument(ctx context.Context, _ string, arg mcp.CompleteArgument, c mcp.CompleteContext) (*mcp.Completion, error) {
	return p.complete(ctx, arg, c), nil
}

// CompleteResourceArgument implements server.ResourceCompletionProvider.
func (p *Provider) CompleteResourceArgument(ctx context.Context, _ string, arg mcp.CompleteArgument, c mcp.CompleteContext) (*mcp.Completion, error) {
	return p.complete(ctx, arg, c), nil
}

func (p *Provider) complete(ctx context.Context, arg mcp.CompleteArgument, c mcp.CompleteContext) *mcp.Completion {
	var values []string
	switch arg.Name {
	case "pipeline", "pipeline_id":
		values = p.list(ctx, pdtools.Toolset, "pipelines", p.pipelines)
	case "stage", "stage_id":
		values = p.stages(ctx, c.Arguments["pipeline"])
	case "integration_id":
		values = p.list(ctx, wstools.Toolset, "integrations", p.integrations)
	case "event":
		values = p.list(ctx, wstools.Toolset, "events", p.events)
	case "referral_id":
		values = p.list(ctx, pctools.Toolset, "referrals", p.referrals)
	default:
		values = static[arg.Name]
	}
	return match(values, arg.Value)
}

// match keeps the values containing prefix (case-insensitively), those
// starting with it first.
func match(values []string, typed string) *mcp.Completion {
	typed = strings.ToLower(strings.TrimSpace(typed))
	var first, rest []string
	for _, v := range values {
		lv := strings.ToLower(v)
		switch {
		case strings.HasPrefix(lv, typed):
			first = append(first, v)
		case strings.Contains(lv, typed):
			rest = append(rest, v)
		}
	}
	all := append(first, rest...)
	out := &mcp.Completion{Values: all, Total: len(all)}
	if len(all) > maxValues {
		out.Values, out.HasMore = all[:maxValues], true
	}
	if out.Values == nil {
		out.Values = []string{}
	}
	return out
}

// list serves the named list of the caller's connection to connector,
// fetching it when stale; a failed fetch serves the stale list, or
// completes nothing, rather than failing the client.
func (p *Provider) list(ctx context.Context, connector, name string, fetch func(context.Context) ([]string, error)) []string {
	p.once.Do(func() {
		p.lists = tools.NewIdleCache[string, *lists](tools.WithMaxEntries(p.MaxConnections),
			tools.WithIdleTTL(p.IdleTTL), tools.WithCacheClock(p.Clock))
	})
	ls := p.lists.GetOrCreate(tools.ConnectionOf(ctx, connector), func() *lists { return &lists{m: map[string]cached{}} })
	ls.mu.Lock()
	c, ok := ls.m[name]
	ls.mu.Unlock()
	clk := clock.OrReal(p.Clock)
	if ok && clk.Now().Sub(c.at) < cacheFor {
		return c.values
	}
	values, err := fetch(ctx)
	if err != nil {
		return c.values
	}
	ls.mu.Lock()
	ls.m[name] = cached{values: values, at: clk.Now()}
	ls.mu.Unlock()
	return values
}

func (p *Provider) pipelines(ctx context.Context) ([]string, error) {
	if p.Pipedrive == nil {
		return nil, nil
	}
	var out []string
	for pl, err := range p.Pipedrive(ctx).Pipelines(ctx) {
		if err != nil {
			return nil, err
		}
		if !pl.IsDeleted {
			out = append(out, pl.Name)
		}
	}
	return out, nil
}

// stages completes stage names, of the named pipeline when given.
func (p *Provider) stages(ctx context.Context, pipeline string) []string {
	all := p.list(ctx, pdtools.Toolset, "stages", func(ctx context.Context) ([]string, error) {
		if p.Pipedrive == nil {
			return nil, nil
		}
		c := p.Pipedrive(ctx)
		names := map[int64]string{}
		for pl, err := range c.Pipelines(ctx) {
			if err != nil {
				return nil, err
			}
			names[pl.ID] = pl.Name
		}
		var out []string
		for st, err := range c.Stages(ctx, 0) {
			if err != nil {
				return nil, err
			}
			if !st.IsDeleted {
				out = append(out, names[st.PipelineID]+"\x00"+st.Name)
			}
		}
		return out, nil
	})
	var out []string
	for _, v := range all {
		pl, st, _ := strings.Cut(v, "\x00")
		if (pipeline == "" || strings.EqualFold(pl, pipeline)) && !slices.Contains(out, st) {
			out = append(out, st)
		}
	}
	return out
}

func (p *Provider) integrations(ctx context.Context) ([]string, error) {
	if p.WorkSpan == nil {
		return nil, nil
	}
	ints, err := p.WorkSpan.Integrations(ctx)
	var out []string
	for _, i := range ints {
		out = append(out, i.IntegrationID)
	}
	return out, err
}

func (p *Provider) events(ctx context.Context) ([]string, error) {
	if p.WorkSpan == nil {
		return nil, nil
	}
	evs, err := p.WorkSpan.Events(ctx)
	var out []string
	for _, e := range evs {
		out = append(out, e.Name)
	}
	return out, err
}

func (p *Provider) referrals(ctx context.Context) ([]string, error) {
	if p.PartnerCenter == nil {
		return nil, nil
	}
	page, err := p.PartnerCenter(ctx).ListReferrals(ctx, pc.ListParams{OrderBy: "updatedDateTime desc", Top: 50, Select: "id"})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range page.Value {
		out = append(out, r.ID)
	}
	return out, nil
}
