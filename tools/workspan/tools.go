// Package workspan holds the MCP tools of the WorkSpan connector: external
// ids, audit status, bulk loads validated locally before any upload, bulk
// status with a budget-aware wait, and reports.
package workspan

import (
	"time"

	ws "github.com/cosell-mcp/cosell-mcp/connectors/workspan"
	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
	"github.com/cosell-mcp/cosell-mcp/tools"
)

// Toolset is the toolset of every WorkSpan tool.
const Toolset = "workspan"

// Options configures the WorkSpan tools.
type Options struct {
	// AllowedDirs are the directories file inputs may be read from.
	AllowedDirs []string
	// ClientRoots marks a server that runs as the user on the client's
	// machine (stdio). It allows the folders the client offers as MCP
	// roots too, and when neither they nor AllowedDirs name any folder,
	// the user's home folder and the working directory, without hidden
	// files and folders (bulkfile.LocalDirs): a local user's path works
	// without configuration, while ~/.ssh, ~/.aws, ~/.config or a
	// project's .env stay out of reach. Never set it over HTTP: a remote
	// client's roots name folders on its own machine, and honouring them
	// or the server's home would let any caller read the server's files
	// (a client declaring file:/// read /etc/passwd). Default false.
	ClientRoots bool
	// RowsPerUpload splits larger inputs into several executions; default 5000.
	RowsPerUpload int
	// MaxFileBytes bounds a file or inline input; default 100 MiB.
	MaxFileBytes int64
	// PollInterval is the least time between status polls while waiting; the
	// budget and the jobs' age make it longer. Default 2s.
	PollInterval time.Duration
	// Clock paces status polling; default the real clock.
	Clock clock.Clock
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
		o.PollInterval = 2 * time.Second
	}
	o.Clock = clock.OrReal(o.Clock)
	if o.MaxResultBytes <= 0 {
		o.MaxResultBytes = 64 << 10
	}
}

// WorkSpan takes no idempotency key, so a create whose outcome is unknown
// can only be checked for, never retried safely (see tools.Creates).
var (
	// createsExecution: each upload starts an execution, and WorkSpan has
	// no call that lists an integration's executions. The bulk tools word
	// their own outcome_unknown (stopped), naming the rows concerned; this
	// is the fallback.
	createsExecution = &tools.Creates{Record: "bulk load execution",
		Check: "check whether its rows were loaded (WorkSpan lists no executions: look in its integration history, " +
			"or read some of the rows back with workspan_read_report_data once processed)"}
	// createsAudit: each call appends an entry to the object's audit trail
	// and raises its events (a SCHEDULED one asks for a Partner Center
	// submission), so a repeat is not harmless, unlike
	// workspan_connect_external_id, which sets a field to a value.
	createsAudit = &tools.Creates{Record: "audit entry",
		Check: "read the object's Partner Center integration status (a report showing it, with workspan_read_report_data; " +
			"after LINKED with an external_id, workspan_get_external_id lists it as partner_center.referral_id)"}
)

// bulkColumns names the columns the bulk loads take, in the bulk tools'
// descriptions.
const bulkColumns = "Columns: the integration's fields, e.g. name and stage (required for new rows), amount, close_date; " +
	"see workspan_list_integrations."

// service is what the WorkSpan tools share.
type service struct {
	client *ws.Client
	opts   Options
	cat    catalog
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
			Description: "Link a WorkSpan object to a CRM id, e.g. a Pipedrive deal id.",
		}, s.connectExternalID),
		tools.New(tools.Spec{
			Name: "workspan_add_audit", Title: "Add audit information", Toolset: Toolset, Operation: "ObjectAudit",
			Description: "Record a WorkSpan object's Partner Center integration status, with a message. Each call adds an audit entry.",
			Creates:     createsAudit,
		}, s.addAudit),
		tools.New(tools.Spec{
			Name: "workspan_list_integrations", Title: "List integrations", Toolset: Toolset, Operation: "GetIntegrationList",
			ReadOnly: true, Idempotent: true,
			Description: "List WorkSpan integrations: ids for bulk loads and triggers, object type, and the columns a bulk load takes " +
				"(type, format, required, allowed values e.g. stage names). Use before a bulk load.",
		}, s.listIntegrations),
		tools.New(tools.Spec{
			Name: "workspan_bulk_load_data", Title: "Bulk load data", Toolset: Toolset, Operation: "BulkloadData",
			Description: "Bulk-load inline CSV or a JSON array into an integration. " + bulkColumns +
				" Validated first (a bad file costs no budget); large inputs split. Follow with workspan_get_bulk_load_status.",
			Creates: createsExecution,
		}, s.bulkLoadData),
		tools.New(tools.Spec{
			Name: "workspan_bulk_load_data_file", Title: "Bulk load data (file)", Toolset: Toolset, Operation: "BulkloadDataFileAttachment",
			Description: "Bulk-load a csv, json or xlsx file (path, or base64) into an integration. " + bulkColumns + " Validated first; large files split.",
			Creates:     createsExecution,
		}, s.bulkLoadDataFile),
		tools.New(tools.Spec{
			Name: "workspan_bulk_load_opportunities", Title: "Bulk load opportunities", Toolset: Toolset, Operation: "BulkloadOpportunity",
			Description: "Bulk-load opportunities from inline CSV or a JSON array. " + bulkColumns + " Validated first; large inputs split.",
			Creates:     createsExecution,
		}, s.bulkLoadOpportunities),
		tools.New(tools.Spec{
			Name: "workspan_bulk_load_opportunities_file", Title: "Bulk load opportunities (file)", Toolset: Toolset, Operation: "BulkloadOpportunityFileAttachment",
			Description: "Bulk-load opportunities from a csv, json or xlsx file (path, or base64). " + bulkColumns + " Validated first; large files split.",
			Creates:     createsExecution,
		}, s.bulkLoadOpportunitiesFile),
		tools.New(tools.Spec{
			Name: "workspan_get_bulk_load_status", Title: "Get bulk load status", Toolset: Toolset, Operation: "GetBulkloadStatus",
			ReadOnly: true, Idempotent: true,
			Description: "Counts and first row errors of bulk executions. With wait, polls (budget-aware, with progress) until all complete.",
		}, s.bulkStatus),
		tools.New(tools.Spec{
			Name: "workspan_list_reports", Title: "List reports", Toolset: Toolset, Operation: "GetReportList",
			ReadOnly: true, Idempotent: true, Projection: &tools.Projection{Rows: "reports"},
			Description: "List WorkSpan reports. If truncated, raise limit.",
		}, s.listReports),
		tools.New(tools.Spec{
			Name: "workspan_read_report_data", Title: "Read report data", Toolset: Toolset, Operation: "GetReportData",
			ReadOnly: true, Idempotent: true,
			Description: "Read a report's rows, optionally filtered. When truncated, pass next_cursor as cursor.",
		}, s.readReport),
	}
}
