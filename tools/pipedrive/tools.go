// Package pipedrive holds the MCP tools of the Pipedrive connector: every
// connector action plus the look-ups an agent needs to find the deal to work.
package pipedrive

import (
	"context"

	pd "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
	"github.com/cosell-mcp/cosell-mcp/tools"
)

// Toolset is the toolset of every Pipedrive tool.
const Toolset = "pipedrive"

// Connection resolves the client of a call: the caller's own credential
// in HTTP mode, or the server's.
type Connection func(ctx context.Context) *pd.Client

// Static is the Connection of a single client.
func Static(c *pd.Client) Connection { return func(context.Context) *pd.Client { return c } }

// service is what the Pipedrive tools share: the connection and each
// client's cached reference data.
type service struct {
	conn  Connection
	refs  *tools.PerClient[*pd.Client, *refData]
	users *tools.PerClient[*pd.Client, *userDirectory]
}

// at returns the call's client and its reference data.
func (s *service) at(ctx context.Context) (*pd.Client, *refData) {
	c := s.conn(ctx)
	return c, s.refs.Get(c)
}

// Service is what the Pipedrive tools share, for wiring that needs more
// than the tools: triggers shape their events with it (ShapeDeals,
// ShapeActivities), sharing the tools' reference-data cache.
type Service struct{ s *service }

// NewService returns the Pipedrive tools' shared state, each call using
// conn's client.
func NewService(conn Connection) *Service {
	return &Service{s: &service{conn: conn, refs: tools.NewPerClient(newRefData), users: tools.NewPerClient(newUserDirectory)}}
}

// Tools returns every Pipedrive tool, each call using conn's client.
func Tools(conn Connection) []tools.Tool { return NewService(conn).Tools() }

// Tools returns every Pipedrive tool. Each is made with newTool, which
// names what Pipedrive did not find.
func (sv *Service) Tools() []tools.Tool {
	s := sv.s
	return append([]tools.Tool{
		newTool(s, tools.Spec{
			Name: "pipedrive_get_stage", Title: "Get stage", Toolset: Toolset, Operation: "GetStage",
			ReadOnly: true, Idempotent: true,
			Description: "Get a Pipedrive stage by id, with its pipeline name, order and deal probability.",
		}, s.getStage),
		newTool(s, tools.Spec{
			Name: "pipedrive_get_deal", Title: "Get deal", Toolset: Toolset, Operation: "GetDeal",
			ReadOnly: true, Idempotent: true,
			Description: "Get a Pipedrive deal by id, with pipeline, stage, owner, organization and person names.",
		}, s.getDeal),
		newTool(s, tools.Spec{
			Name: "pipedrive_list_deals", Title: "List deals", Toolset: Toolset, Operation: "ListDeals",
			ReadOnly: true, Idempotent: true, Projection: &tools.Projection{Rows: "deals"},
			Description: "List Pipedrive deals, filtered by the fields below. While has_more, pass next_cursor as cursor.",
		}, s.listDeals),
		newTool(s, tools.Spec{
			Name: "pipedrive_search_deals", Title: "Search deals", Toolset: Toolset, Operation: "SearchDeals",
			ReadOnly: true, Idempotent: true, Projection: &tools.Projection{Rows: "deals"},
			Description: "Find deals by title, custom field value (e.g. a referral id) or organization name. If truncated, raise limit.",
		}, s.searchDeals),
		newTool(s, tools.Spec{
			Name: "pipedrive_list_pipelines", Title: "List pipelines and stages", Toolset: Toolset, Operation: "ListPipelines",
			ReadOnly: true, Idempotent: true,
			Description: "List pipelines with their stages in order (ids, names). Cached: no budget when warm.",
		}, s.listPipelines),
		newTool(s, tools.Spec{
			Name: "pipedrive_add_deal", Title: "Add deal", Toolset: Toolset, Operation: "AddDealV2",
			Description: "Create a Pipedrive deal; with only pipeline_id it starts in the first stage (see pipedrive_list_pipelines).",
			Creates:     createsDeal,
		}, s.addDealV2),
		newTool(s, tools.Spec{
			Name: "pipedrive_add_deal_deprecated", Title: "Add deal [deprecated]", Toolset: Toolset, Operation: "AddDeal",
			Deprecated:  true,
			Description: "Deprecated: use pipedrive_add_deal. Create a Pipedrive deal without choosing a pipeline.",
			Creates:     createsDeal,
		}, s.addDeal),
		newTool(s, tools.Spec{
			Name: "pipedrive_update_deal_stage", Title: "Update deal stage", Toolset: Toolset, Operation: "UpdateDealStageV2",
			Idempotent:  true,
			Description: "Move a deal to another stage of pipeline_id (see pipedrive_list_pipelines).",
		}, s.updateDealStageV2),
		newTool(s, tools.Spec{
			Name: "pipedrive_update_deal_stage_deprecated", Title: "Update deal stage [deprecated]", Toolset: Toolset, Operation: "UpdateDealStage",
			Deprecated: true, Idempotent: true,
			Description: "Deprecated: use pipedrive_update_deal_stage. Move a deal to a stage given by id alone.",
		}, s.updateDealStage),
		newTool(s, tools.Spec{
			Name: "pipedrive_update_deal_status", Title: "Update deal status", Toolset: Toolset, Operation: "UpdateDealStatus",
			Idempotent: true, Destructive: true,
			Description: "Set a deal's status: open, won, lost (optionally with lost_reason) or deleted (removed after 30 days).",
		}, s.updateDealStatus),
		newTool(s, tools.Spec{
			Name: "pipedrive_add_activity", Title: "Add activity", Toolset: Toolset, Operation: "AddActivity",
			Description: "Log or schedule an activity (call, meeting, task…) on a deal, person or organization.",
			Creates:     createsActivity,
		}, s.addActivity),
		newTool(s, tools.Spec{
			Name: "pipedrive_update_deal", Title: "Update deal", Toolset: Toolset, Operation: "UpdateDeal",
			Idempotent: true, Destructive: true,
			Description: "Change the given fields of a deal (stage and status have their own tools).",
		}, s.updateDeal),
		newTool(s, tools.Spec{
			Name: "pipedrive_list_activities", Title: "List activities", Toolset: Toolset, Operation: "ListActivities",
			ReadOnly: true, Idempotent: true, Projection: &tools.Projection{Rows: "activities"},
			Description: "List activities, earliest due first. While has_more, pass next_cursor as cursor; a page may be short.",
		}, s.listActivities),
		newTool(s, tools.Spec{
			Name: "pipedrive_update_activity", Title: "Update activity", Toolset: Toolset, Operation: "UpdateActivity",
			Idempotent: true, Destructive: true,
			Description: "Change the given fields of an activity; done true marks it done.",
		}, s.updateActivity),
	}, s.partyTools()...)
}

// Pipedrive has no idempotency key: a create whose outcome is unknown can
// only be checked for, never retried safely (see tools.Creates).
var (
	createsDeal = &tools.Creates{Record: "deal",
		Check: "search for its title with pipedrive_search_deals (exact_match true)"}
	createsActivity = &tools.Creates{Record: "activity",
		Check: "look for it among the activities of its deal, person or organization with pipedrive_list_activities " +
			"(the resource pipedrive://triggers/new-activities lists new ones)"}
)
