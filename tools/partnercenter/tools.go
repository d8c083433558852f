// Package partnercenter holds the MCP tools of the Partner Center Referrals
// connector: every connector action, with OData compiled from convenience
// filters, optimistic concurrency with eTags and the referral state machine
// checked before any write.
package partnercenter

import (
	"context"

	pc "github.com/cosell-mcp/cosell-mcp/connectors/partnercenter"
	"github.com/cosell-mcp/cosell-mcp/tools"
)

// Toolset is the toolset of every Partner Center tool.
const Toolset = "partnercenter"

// Connection resolves the client of a call: the caller's own credential
// in HTTP mode, or the server's.
type Connection func(ctx context.Context) *pc.Client

// Static is the Connection of a single client.
func Static(c *pc.Client) Connection { return func(context.Context) *pc.Client { return c } }

// service is what the Partner Center tools share: the connection and, per
// client, the referral versions it has seen.
type service struct {
	conn     Connection
	versions *tools.PerClient[*pc.Client, *versionCache]
}

// versionsFor returns the version cache of the call's client.
func (s *service) versionsFor(ctx context.Context) *versionCache { return s.versions.Get(s.conn(ctx)) }

// Tools returns every Partner Center Referrals tool, each call using conn's client.
func Tools(conn Connection) []tools.Tool {
	s := &service{conn: conn, versions: tools.NewPerClient(func(*pc.Client) *versionCache { return newVersionCache() })}
	return []tools.Tool{
		tools.New(tools.Spec{
			Name: "partnercenter_list_referrals", Title: "List referrals", Toolset: Toolset, Operation: "GetAllReferrals",
			ReadOnly: true, Idempotent: true,
			Description: "List referrals, newest update first, filtered by the fields below or a raw OData filter. " +
				"Compact rows unless full; while has_more, pass next_cursor as cursor.",
		}, s.listReferrals),
		tools.New(tools.Spec{
			Name: "partnercenter_get_referral", Title: "Get referral", Toolset: Toolset, Operation: "GetReferralById",
			ReadOnly: true, Idempotent: true,
			Description: "Get one referral in full, including its eTag (needed by every update tool).",
		}, s.getReferral),
		tools.New(tools.Spec{
			Name: "partnercenter_create_referral", Title: "Create referral", Toolset: Toolset, Operation: "CreateReferral",
			Description: "Create an outgoing referral. Retrying with the same request_id never creates twice.",
			Creates: &tools.Creates{Record: "referral", Retry: retrySameRequestID,
				Check: "find it with partnercenter_list_referrals (customer_name_contains, created_since today)"},
		}, s.createReferral),
		tools.New(tools.Spec{
			Name: "partnercenter_update_referral_fields", Title: "Update referral fields", Toolset: Toolset, Operation: "PatchReferralById",
			Idempotent: true,
			Description: "Change a referral's fields or status (New→Active/Accepted accepts, New→Closed/Declined declines, " +
				"Active→Closed/Won|Lost). Needs the eTag of the last read; on conflict, re-read.",
		}, s.updateReferralFields),
		tools.New(tools.Spec{
			Name: "partnercenter_update_referral_deprecated", Title: "Update referral [deprecated]", Toolset: Toolset, Operation: "UpdateReferralById",
			Deprecated: true, Idempotent: true, Destructive: true,
			Description: "Deprecated: use partnercenter_update_referral_fields. Replace a whole referral (PUT) with If-Match.",
		}, s.updateReferral),
		tools.New(tools.Spec{
			Name: "partnercenter_create_deal_registration", Title: "Create deal registration", Toolset: Toolset, Operation: "CreateDealRegistrationByReferralId",
			Description: "Register an Azure IP co-sell deal, with contract and solutions, on an accepted (Active) referral.",
			Creates: &tools.Creates{Record: "deal registration", Retry: retrySameRequestID,
				Check: "read the referral with partnercenter_get_referral and look at its registrations"},
		}, s.createDealRegistration),
		tools.New(tools.Spec{
			Name: "partnercenter_update_deal_registration", Title: "Update deal registration", Toolset: Toolset, Operation: "PatchDealRegistrationByReferralId",
			Idempotent:  true,
			Description: "Change the contract or first solution of a referral's deal registration. Needs the referral's eTag.",
		}, s.updateDealRegistration),
	}
}

// retrySameRequestID is how a Partner Center create whose outcome is
// unknown is retried safely. The Partner Center REST headers page
// (learn.microsoft.com/partner-center/developer/headers) defines
// MS-RequestId as "a unique identifier for the call, used to ensure
// id-potency. If there's a timeout, the retry call should include the same
// value"; the sandbox replays the first reply to a repeated one.
const retrySameRequestID = "Retrying with the same request_id (in this error) and the same arguments is safe, also after a 5xx or a timeout: " +
	"Partner Center treats it as the same request and never creates a second record; never retry with a new request_id"
