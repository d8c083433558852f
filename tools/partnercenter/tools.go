// Package partnercenter holds the MCP tools of the Partner Center Referrals
// connector: every connector action, with OData compiled from convenience
// filters, optimistic concurrency with eTags and the referral state machine
// checked before any write.
package partnercenter

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/invopop/jsonschema"

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
	return compactListed([]tools.Tool{
		tools.New(tools.Spec{
			Name: "partnercenter_list_referrals", Title: "List referrals", Toolset: Toolset, Operation: "GetAllReferrals",
			ReadOnly: true, Idempotent: true, Projection: &tools.Projection{Rows: "referrals", Exclusive: []string{"full"}},
			Description: "List referrals, newest created first (oldest_first reverses), filtered by the fields below or a raw OData filter; " +
				"updated_since for recent changes. Compact rows unless full; while has_more, pass next_cursor as cursor.",
		}, s.listReferrals),
		tools.New(tools.Spec{
			Name: "partnercenter_get_referral", Title: "Get referral", Toolset: Toolset, Operation: "GetReferralById",
			ReadOnly: true, Idempotent: true,
			Description: "Get one referral in full, including its eTag (needed by every update tool).",
		}, s.getReferral),
		tools.New(tools.Spec{
			Name: "partnercenter_create_referral", Title: "Create referral", Toolset: Toolset, Operation: "CreateReferral",
			Description: "Create an outgoing referral; Partner Center answers it Active/Accepted (no accept step needed). Retrying with the same request_id never creates twice.",
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
			Description: "Register an Azure IP co-sell deal, with contract and solutions, on an accepted (Active) or won (Closed/Won) referral.",
			Creates: &tools.Creates{Record: "deal registration", Retry: retrySameRequestID,
				Check: "read the referral with partnercenter_get_referral and look at its registrations"},
		}, s.createDealRegistration),
		tools.New(tools.Spec{
			Name: "partnercenter_update_deal_registration", Title: "Update deal registration", Toolset: Toolset, Operation: "PatchDealRegistrationByReferralId",
			Idempotent:  true,
			Description: "Change the contract or first solution of a referral's deal registration. Needs the referral's eTag.",
		}, s.updateDealRegistration),
	})
}

// guidPattern is the pattern of the GUID arguments (request and
// correlation ids, engagement_id).
const guidPattern = "^[0-9a-fA-F-]{36}$"

// listedAs replaces the listed description of an argument where the
// generated shape would repeat another argument's.
var listedAs = map[string]string{
	"partnercenter_create_referral.team":                     "Your sellers; items as customer.contacts.",
	"partnercenter_create_referral.invite_context":           "{notes, invited_by{organization_id, organization_name}, assistance_request_code: e.g. ProofOfConceptOrDemo}",
	"partnercenter_update_referral_fields.add_team_member":   "Deprecated: use team {op:add}.",
	"partnercenter_update_referral_fields.customer_contacts": "customerProfile.team; as team.",
}

// compactListed shortens the input schemas tools/list carries (the byte
// budget of the list): an argument that is an object, or a list of
// objects, is listed with its shape in its description, e.g.
// "[{email*, first_name*, last_name*, phone}]" (* = required, a|b = one of),
// instead of its nested schema; GUID patterns and minLength 1 are left
// out. The full schema is in schemas/<tool>.json, and validation still
// enforces all of it before any call.
func compactListed(ts []tools.Tool) []tools.Tool {
	for i := range ts {
		var s jsonschema.Schema
		if json.Unmarshal(ts[i].ListedInputSchema, &s) != nil || s.Properties == nil {
			continue
		}
		for p := s.Properties.Oldest(); p != nil; p = p.Next() {
			v := p.Value
			if d, ok := listedAs[ts[i].Name+"."+p.Key]; ok {
				p.Value = &jsonschema.Schema{Type: v.Type, Description: d}
				continue
			}
			if shape := nestedShape(v); shape != "" {
				p.Value = &jsonschema.Schema{Type: v.Type, Description: strings.TrimSpace(v.Description + " " + shape)}
				continue
			}
			if v.Pattern == guidPattern {
				v.Pattern = ""
			}
			if v.MinLength != nil && *v.MinLength == 1 {
				v.MinLength = nil
			}
		}
		if raw, err := json.Marshal(&s); err == nil {
			ts[i].ListedInputSchema = raw
		}
	}
	return ts
}

// nestedShape is the compact shape of an object schema or a list of
// objects, "" for anything else.
func nestedShape(s *jsonschema.Schema) string {
	switch {
	case s.Type == "object" && s.Properties != nil:
		return fields(s)
	case s.Type == "array" && s.Items != nil && s.Items.Type == "object":
		return "[" + fields(s.Items) + "]"
	}
	return ""
}

// fields renders an object schema's members in declaration order: name,
// * when required, a nested shape, and ": a|b" for an enumeration.
func fields(s *jsonschema.Schema) string {
	if s.Properties == nil || s.Properties.Len() == 0 {
		return "{…}"
	}
	var parts []string
	for p := s.Properties.Oldest(); p != nil; p = p.Next() {
		part := p.Key
		if slices.Contains(s.Required, p.Key) {
			part += "*"
		}
		v := p.Value
		if v.Type == "array" {
			part += "[]"
			v = v.Items
		}
		if v != nil && v.Type == "object" {
			part += fields(v)
		}
		if v != nil && len(v.Enum) > 0 {
			vs := make([]string, 0, len(v.Enum))
			for _, e := range v.Enum {
				vs = append(vs, fmt.Sprint(e))
			}
			part += ": " + strings.Join(vs, "|")
		}
		parts = append(parts, part)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// retrySameRequestID is how a Partner Center create whose outcome is
// unknown is retried safely. The Partner Center REST headers page
// (learn.microsoft.com/partner-center/developer/headers) defines
// MS-RequestId as "a unique identifier for the call, used to ensure
// id-potency. If there's a timeout, the retry call should include the same
// value"; the sandbox replays the first reply to a repeated one.
const retrySameRequestID = "Retrying with the same request_id (in this error) and the same arguments is safe, also after a 5xx or a timeout: " +
	"Partner Center treats it as the same request and never creates a second record; never retry with a new request_id"
