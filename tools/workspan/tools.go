// Package workspan holds the MCP tools of the WorkSpan connector: external
// ids, audit status, bulk loads validated locally before any upload, bulk
// status with a budget-aware wait, and reports.
package workspan

import (
	"time"

	ws "github.com/cosell-mcp/cosell-mcp/connectors/workspan"
	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
	"github.com/cosell-mcp/cosell-mcp/tools"
)

// Toolset is the toolset of every WorkSpan tool.
const Toolset = "workspan"

// Options configures the WorkSpan tools.
type Options struct {
	// AllowedDirs are the directories file inputs may be read from.
	AllowedDirs []string
	// RowsPerUpload splits larger inputs into several executions; default 5000.
	RowsPerUpload int
	// MaxFileBytes bounds a file or inline input; default 100 MiB.
	MaxFileBytes int64
	// PollInterval is the least time between status polls while waiting; the
	// budget may make it longer. Default 5s.
	PollInterval time.Duration
	// Budget is the connection's throttle budget, used to pace polling.
	Budget *throttle.Budget
	// MaxResultBytes caps report data in one result; default 64 KiB.
	MaxResultBytes int
}

func (o *Options) defaults() {
	if o.RowsPerUpload <= 0 {
		o.RowsPerUpload = 5000
	}
	if o.MaxFileBytes <= 0 {
		o.MaxFileBytes = 100 << 20
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 5 * time.Second
	}
	if o.MaxResultBytes <= 0 {
		o.MaxResultBytes = 64 << 10
	}
}

// service is what the WorkSpan tools share.
type service struct {
	client *ws.Client
	opts   Options
}

// Tools returns every WorkSpan tool bound to the client.
func Tools(c *ws.Client, opts Options) []tools.Tool {
	opts.defaults()
	s := &service{client: c, opts: opts}
	return []tools.Tool{
		tools.New(tools.Spec{
			Name: "workspan_get_external_id", Title: "Get external ids", Toolset: Toolset, Operation: "GetExternalId",
			ReadOnly: true, Idempotent: true,
			Description: "Get the external (CRM) ids linked to a WorkSpan object id.",
		}, s.getExternalID),
		tools.New(tools.Spec{
			Name: "workspan_connect_external_id", Title: "Connect external id", Toolset: Toolset, Operation: "UpdateExternalId",
			Idempotent:  true,
			Description: "Link a WorkSpan object to a CRM id (default field: sales_details.crm_opportunity_id for opportunities, account_info.external_account_id for accounts).",
		}, s.connectExternalID),
		tools.New(tools.Spec{
			Name: "workspan_add_audit", Title: "Add audit information", Toolset: Toolset, Operation: "ObjectAudit",
			Idempotent:  true,
			Description: "Record the Partner Center integration status of a WorkSpan object: SCHEDULED, CREATE_FAILED, UPDATE_FAILED or LINKED, with a message.",
		}, s.addAudit),
		tools.New(tools.Spec{
			Name: "workspan_bulk_load_data", Title: "Bulk load data", Toolset: Toolset, Operation: "BulkloadData",
			Description: "Bulk-load inline CSV text or a JSON array of objects into an integration. Validated locally first " +
				"(no budget spent on a bad file); large inputs are split into several executions. Follow with workspan_get_bulk_load_status.",
		}, s.bulkLoadData),
		tools.New(tools.Spec{
			Name: "workspan_bulk_load_data_file", Title: "Bulk load data (file)", Toolset: Toolset, Operation: "BulkloadDataFileAttachment",
			Description: "Bulk-load a csv, json or xlsx file (a path inside the allowed folders, or base64 content) into an integration. Validated locally first; split when large.",
		}, s.bulkLoadDataFile),
		tools.New(tools.Spec{
			Name: "workspan_bulk_load_opportunities", Title: "Bulk load opportunities", Toolset: Toolset, Operation: "BulkloadOpportunity",
			Description: "Bulk-load opportunities from inline CSV text or a JSON array. Validated locally first; split when large.",
		}, s.bulkLoadOpportunities),
		tools.New(tools.Spec{
			Name: "workspan_bulk_load_opportunities_file", Title: "Bulk load opportunities (file)", Toolset: Toolset, Operation: "BulkloadOpportunityFileAttachment",
			Description: "Bulk-load opportunities from a csv, json or xlsx file (a path inside the allowed folders, or base64 content). Validated locally first; split when large.",
		}, s.bulkLoadOpportunitiesFile),
		tools.New(tools.Spec{
			Name: "workspan_get_bulk_load_status", Title: "Get bulk load status", Toolset: Toolset, Operation: "GetBulkloadStatus",
			ReadOnly: true, Idempotent: true,
			Description: "Counts and the first row errors of bulk executions. With wait, polls at a budget-aware pace until all complete, sending progress notifications.",
		}, s.bulkStatus),
		tools.New(tools.Spec{
			Name: "workspan_list_reports", Title: "List reports", Toolset: Toolset, Operation: "GetReportList",
			ReadOnly: true, Idempotent: true,
			Description: "List WorkSpan reports (id, name, status). Pages until the end or limit.",
		}, s.listReports),
		tools.New(tools.Spec{
			Name: "workspan_read_report_data", Title: "Read report data", Toolset: Toolset, Operation: "GetReportData",
			ReadOnly: true, Idempotent: true,
			Description: "Read a report's rows, optionally filtered (AND/OR of column filters). Results are capped in size: when truncated, pass next_page back as page.",
		}, s.readReport),
	}
}
