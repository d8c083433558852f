package partnercenter

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/invopop/jsonschema"

	pc "github.com/cosell-mcp/cosell-mcp/connectors/partnercenter"
	"github.com/cosell-mcp/cosell-mcp/internal/upstream"
	"github.com/cosell-mcp/cosell-mcp/tools"
)

// ListReferralsArgs are the arguments of partnercenter_list_referrals.
type ListReferralsArgs struct {
	Status        string `json:"status,omitempty" jsonschema:"enum=New,enum=Active,enum=Closed"`
	Substatus     string `json:"substatus,omitempty" jsonschema:"enum=Pending,enum=Received,enum=Accepted,enum=Won,enum=Lost,enum=Declined,enum=Expired"`
	Direction     string `json:"direction,omitempty" jsonschema:"enum=Incoming,enum=Outgoing"`
	Type          string `json:"type,omitempty" jsonschema:"enum=Shared,enum=Independent" jsonschema_description:"Shared = Microsoft co-sell."`
	Qualification string `json:"qualification,omitempty" jsonschema:"enum=Direct,enum=MarketingQualified,enum=SalesQualified"`
	Country       string `json:"country,omitempty" jsonschema:"pattern=^[A-Za-z]{2}$" jsonschema_description:"Customer country, ISO alpha-2."`
	CustomerName  string `json:"customer_name_contains,omitempty" jsonschema_description:"Part of the customer name."`
	UpdatedSince  string `json:"updated_since,omitempty" jsonschema_description:"RFC 3339 time or YYYY-MM-DD."`
	CreatedSince  string `json:"created_since,omitempty" jsonschema_description:"RFC 3339 time or YYYY-MM-DD."`
	Filter        string `json:"filter,omitempty" jsonschema_description:"Raw OData $filter, ANDed, e.g. details/dealValue ge 50000."`
	Oldest        bool   `json:"oldest_first,omitempty" jsonschema_description:"Oldest created first (default newest)."`
	Limit         int    `json:"limit,omitempty" jsonschema:"minimum=1,maximum=500" jsonschema_description:"Maximum referrals, default 25."`
	Cursor        string `json:"cursor,omitempty" jsonschema_description:"next_cursor of the previous page (filters then ignored)."`
	Full          bool   `json:"full,omitempty" jsonschema_description:"Full records instead of compact rows."`
	CorrelationID string `json:"correlation_id,omitempty" jsonschema:"pattern=^[0-9a-fA-F-]{36}$"`
}

// Row is a compact referral: what triage needs without a read per referral.
type Row struct {
	ID            string  `json:"id"`
	Name          string  `json:"name"`
	Status        string  `json:"status"`
	Substatus     string  `json:"substatus,omitempty"`
	Direction     string  `json:"direction,omitempty"`
	Type          string  `json:"type,omitempty"`
	Qualification string  `json:"qualification,omitempty"`
	CustomerName  string  `json:"customer_name,omitempty"`
	Country       string  `json:"country,omitempty"`
	DealValue     float64 `json:"deal_value,omitempty"`
	Currency      string  `json:"currency,omitempty"`
	ClosingDate   string  `json:"closing_date,omitempty"`
	// InvitedBy is the organization that sent the referral
	// (inviteContext.invitedBy: its name, else its id).
	InvitedBy string `json:"invited_by,omitempty"`
	// Expires is expirationDateTime.
	Expires         string `json:"expires,omitempty"`
	Registrations   int    `json:"registrations,omitempty"`
	CreatedDateTime string `json:"created,omitempty"`
	UpdatedDateTime string `json:"updated,omitempty"`
	ETag            string `json:"etag,omitempty"`
}

// ReferralList is a page of referrals.
type ReferralList struct {
	Referrals []Row          `json:"referrals"`
	Full      []FullReferral `json:"full,omitempty"`
	// Filter is the OData $filter that was sent, for the agent to reuse or refine.
	Filter     string `json:"filter,omitempty"`
	HasMore    bool   `json:"has_more"`
	NextCursor string `json:"next_cursor,omitempty"`
	// CorrelationID is the MS-CorrelationId every request of the call sent.
	CorrelationID string `json:"correlation_id,omitempty"`
}

// listCursor is the opaque continuation of a listing: the caller's filter,
// the direction, and the position after the last referral listed in the
// stable order (createdDateTime, then id), which no update moves.
type listCursor struct {
	Filter string    `json:"f,omitempty"`
	Oldest bool      `json:"a,omitempty"`
	After  *position `json:"p,omitempty"`
}

// position is a referral's place in the listing order.
type position struct {
	Created string `json:"c,omitempty"`
	ID      string `json:"i"`
}

func positionOf(r *pc.Referral) *position { return &position{Created: r.CreatedDateTime, ID: r.ID} }

func encodeCursor(c listCursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (listCursor, error) {
	var c listCursor
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err == nil && c.After != nil && (c.After.ID == "" || c.After.Created != "" && !isDateTime(c.After.Created)) {
		err = errors.New("bad position")
	}
	if err != nil {
		return c, tools.InvalidArgument("cursor", "cursor is not one this tool returned; start again without it")
	}
	return c, nil
}

func isDateTime(s string) bool {
	_, err := time.Parse(time.RFC3339Nano, s)
	return err == nil
}

// orderBy is the $orderby of the listing order.
func (c listCursor) orderBy() string {
	if c.Oldest {
		return "createdDateTime asc,id asc"
	}
	return "createdDateTime desc,id asc"
}

// filterAfter is the caller's filter restricted to the referrals after p
// in the listing order (nulls sort first ascending, as OData services do).
func (c listCursor) filterAfter(p *position) string {
	if p == nil {
		return c.Filter
	}
	var keyset string
	sameCreated := "createdDateTime eq null"
	switch {
	case p.Created == "" && c.Oldest:
		keyset = "createdDateTime ne null or "
	case p.Created == "":
	case c.Oldest:
		sameCreated = "createdDateTime eq " + p.Created
		keyset = "createdDateTime gt " + p.Created + " or "
	default:
		sameCreated = "createdDateTime eq " + p.Created
		keyset = "createdDateTime lt " + p.Created + " or createdDateTime eq null or "
	}
	keyset = "(" + keyset + "(" + sameCreated + " and id gt " + quote(p.ID) + "))"
	if c.Filter == "" {
		return keyset
	}
	return "(" + c.Filter + ") and " + keyset
}

// pageSize is how many referrals one upstream request asks for at most.
const pageSize = 100

// maxRequests bounds the upstream requests of one listing call.
const maxRequests = 20

// listReferrals lists up to limit referrals after the cursor's position,
// in the stable order. It asks for one referral more than it returns, so
// has_more is exact when the upstream says where the collection ends.
// Upstream $top is read either way: as a page size (pages continue through
// @odata.nextLink) or as a cap on the whole collection (a full answer
// without a nextLink may have more after it, so the listing continues
// with a new request after the last referral received).
func (s *service) listReferrals(ctx context.Context, in ListReferralsArgs) (ReferralList, error) {
	ctx, corr := correlate(ctx, in.CorrelationID)
	out, err := s.listReferralsAs(ctx, in)
	out.CorrelationID = corr
	return out, tools.WithCorrelationID(err, corr)
}

func (s *service) listReferralsAs(ctx context.Context, in ListReferralsArgs) (ReferralList, error) {
	cur, err := s.listQuery(in)
	if err != nil {
		return ReferralList{}, err
	}
	limit := in.Limit
	if limit == 0 {
		limit = 25
	}
	want := limit + 1
	client := s.conn(ctx)
	out := ReferralList{Referrals: []Row{}, Filter: cur.Filter}

	var got []pc.Referral
	seen := map[string]bool{}
	after := cur.After
	more := false // the upstream may hold referrals after those received
	for requests := 0; len(got) < want; {
		if requests == maxRequests {
			more = true
			break
		}
		top := min(want-len(got), pageSize)
		page, err := client.ListReferrals(ctx, pc.ListParams{Filter: cur.filterAfter(after), OrderBy: cur.orderBy(), Top: top})
		requests++
		served, links := 0, map[string]bool{}
		for err == nil {
			served += len(page.Value)
			for i := range page.Value {
				r := &page.Value[i]
				if r.ID != "" && !seen[r.ID] && len(got) < want {
					seen[r.ID] = true
					got = append(got, *r)
				}
				after = positionOf(r)
			}
			next := page.NextLink
			if len(got) >= want || next == "" || links[next] || requests == maxRequests {
				more = next != ""
				break
			}
			links[next] = true
			page, err = client.NextPage(ctx, next)
			requests++
		}
		if err != nil {
			return ReferralList{}, err
		}
		if len(got) >= want || more {
			break
		}
		if served < top {
			break // the collection ended before $top
		}
		// $top referrals and no nextLink: $top was read as a cap, and more
		// may follow the last one.
		more = true
	}
	if len(got) > limit || more {
		out.HasMore = true
		got = got[:min(len(got), limit)]
		next := cur
		next.After = after
		if len(got) > 0 {
			next.After = positionOf(&got[len(got)-1])
		}
		out.NextCursor = encodeCursor(next)
	}
	for i := range got {
		s.versionsFor(ctx).remember(&got[i])
		out.Referrals = append(out.Referrals, rowOf(&got[i]))
	}
	if in.Full {
		for _, r := range got {
			out.Full = append(out.Full, forOutput(r))
		}
		out.Referrals = []Row{}
	}
	return out, nil
}

// listQuery compiles the arguments (or the cursor) into a listing.
func (s *service) listQuery(in ListReferralsArgs) (listCursor, error) {
	if in.Cursor != "" {
		return decodeCursor(in.Cursor)
	}
	updated, verr := tools.ParseSince("updated_since", in.UpdatedSince)
	if verr != nil {
		return listCursor{}, verr
	}
	created, verr := tools.ParseSince("created_since", in.CreatedSince)
	if verr != nil {
		return listCursor{}, verr
	}
	if in.Substatus != "" && in.Status != "" {
		if err := pc.CheckTransition(in.Status, in.Status, in.Substatus); err != nil {
			return listCursor{}, tools.InvalidArgument("substatus", "substatus %s never goes with status %s", in.Substatus, in.Status)
		}
	}
	var f filterBuilder
	f.eq("status", in.Status)
	f.eq("substatus", in.Substatus)
	f.eq("direction", in.Direction)
	f.eq("type", in.Type)
	f.eq("qualification", in.Qualification)
	f.eq("customerProfile/address/country", strings.ToUpper(in.Country))
	f.contains("customerProfile/name", in.CustomerName)
	f.since("updatedDateTime", updated)
	f.since("createdDateTime", created)
	f.raw(in.Filter)
	return listCursor{Filter: f.String(), Oldest: in.Oldest}, nil
}

// forOutput returns a referral as the tools output it: every member the
// client read, customerProfile.ids and requirement items of any JSON type
// included (the output schema is a free-form object).
func forOutput(r pc.Referral) FullReferral { return FullReferral(r) }

// RowOf returns a referral as partnercenter_list_referrals lists it.
func RowOf(r pc.Referral) Row { return rowOf(&r) }

// FullOf returns a referral as partnercenter_get_referral returns it.
func FullOf(r pc.Referral) FullReferral { return forOutput(r) }

func rowOf(r *pc.Referral) Row {
	row := Row{
		ID: r.ID, Name: r.Name, Status: r.Status, Substatus: r.Substatus, Direction: r.Direction, Type: r.Type,
		Qualification: r.Qualification, Registrations: len(r.Registrations), Expires: r.ExpirationDateTime,
		CreatedDateTime: r.CreatedDateTime, UpdatedDateTime: r.UpdatedDateTime, ETag: r.ETag,
	}
	if ic := r.InviteContext; ic != nil && ic.InvitedBy != nil {
		row.InvitedBy = nonEmpty(ic.InvitedBy.OrganizationName, ic.InvitedBy.OrganizationID)
	}
	if cp := r.CustomerProfile; cp != nil {
		row.CustomerName = cp.Name
		if cp.Address != nil {
			row.Country = cp.Address.Country
		}
	}
	if d := r.Details; d != nil {
		if d.DealValue != nil {
			row.DealValue = *d.DealValue
		}
		row.Currency, row.ClosingDate = d.Currency, d.ClosingDateTime
	}
	return row
}

// FullReferral is a whole Partner Center referral. Its schema is declared
// as a free-form object: the referral's full shape (the connector
// definition's Referral) would cost an agent kilobytes in every tool
// listing, for fields the tool descriptions name where they matter.
type FullReferral pc.Referral

// MarshalJSON encodes the referral as pc.Referral does, with the members the
// model does not declare (pc.Referral.Extra).
func (f FullReferral) MarshalJSON() ([]byte, error) { return json.Marshal(pc.Referral(f)) }

// UnmarshalJSON decodes the referral as pc.Referral does, keeping undeclared members.
func (f *FullReferral) UnmarshalJSON(b []byte) error { return json.Unmarshal(b, (*pc.Referral)(f)) }

// JSONSchema implements the schema generator's override.
func (FullReferral) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{Type: "object", AdditionalProperties: jsonschema.TrueSchema,
		Description: "A Partner Center referral (id, name, status, substatus, eTag, customerProfile, details, team, registrations …)."}
}

// GetReferralArgs are the arguments of partnercenter_get_referral.
type GetReferralArgs struct {
	ID            string `json:"id" jsonschema:"minLength=1" jsonschema_description:"Referral id."`
	CorrelationID string `json:"correlation_id,omitempty" jsonschema:"pattern=^[0-9a-fA-F-]{36}$"`
}

// ReferralResult wraps one full referral.
type ReferralResult struct {
	Referral FullReferral `json:"referral"`
}

// GetResult is a referral as read and the MS-CorrelationId of the read.
type GetResult struct {
	Referral      FullReferral `json:"referral"`
	CorrelationID string       `json:"correlation_id"`
}

func (s *service) getReferral(ctx context.Context, in GetReferralArgs) (GetResult, error) {
	ctx, corr := correlate(ctx, in.CorrelationID)
	r, err := s.conn(ctx).GetReferral(ctx, in.ID)
	if err != nil {
		return GetResult{}, tools.WithCorrelationID(referralNotFound(err, in.ID), corr)
	}
	s.versionsFor(ctx).remember(r)
	return GetResult{Referral: forOutput(*r), CorrelationID: corr}, nil
}

// current returns the state of the referral version the caller read. An
// unknown version is read once; if the referral has moved on, the caller
// gets a conflict and nothing is written.
func (s *service) current(ctx context.Context, id, etag string) (version, error) {
	if v, ok := s.versionsFor(ctx).lookup(id, etag); ok {
		return v, nil
	}
	r, err := s.conn(ctx).GetReferral(ctx, id)
	if err != nil {
		return version{}, referralNotFound(err, id)
	}
	s.versionsFor(ctx).remember(r)
	if normalizeETag(r.ETag) != normalizeETag(etag) {
		return version{}, conflict(id)
	}
	v, _ := s.versionsFor(ctx).lookup(id, etag)
	return v, nil
}

// referralNotFound names the referral a 404 is about and where to find
// valid ids.
func referralNotFound(err error, id string) error {
	return tools.NamedNotFound(err, "id", "referral "+id, "find referrals with partnercenter_list_referrals")
}

func conflict(id string) *tools.Error {
	return &tools.Error{Code: tools.CodeConflict, Message: fmt.Sprintf(
		"referral %s has changed since it was read (eTag mismatch); read it again with partnercenter_get_referral, check the change, and retry with the new etag", id)}
}

// written returns the referral after a write: the reply's when the API
// sent one, otherwise a fresh read. A 412 becomes a conflict.
func (s *service) written(ctx context.Context, id string, r *pc.Referral, err error) (ReferralResult, error) {
	var ue *upstream.Error
	if errors.As(err, &ue) && ue.Status == 412 {
		return ReferralResult{}, conflict(id)
	}
	if err != nil {
		return ReferralResult{}, referralNotFound(err, id)
	}
	if r == nil {
		if r, err = s.conn(ctx).GetReferral(ctx, id); err != nil {
			return ReferralResult{}, referralNotFound(err, id)
		}
	}
	s.versionsFor(ctx).remember(r)
	return ReferralResult{Referral: forOutput(*r)}, nil
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
