package partnercenter

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

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
	OrderBy       string `json:"order_by,omitempty" jsonschema_description:"OData $orderby; default updatedDateTime desc."`
	Limit         int    `json:"limit,omitempty" jsonschema:"minimum=1,maximum=500" jsonschema_description:"Maximum referrals, default 25."`
	Cursor        string `json:"cursor,omitempty" jsonschema_description:"next_cursor of the previous page (filters then ignored)."`
	Full          bool   `json:"full,omitempty" jsonschema_description:"Full records instead of compact rows."`
}

// Row is a compact referral.
type Row struct {
	ID              string  `json:"id"`
	Name            string  `json:"name"`
	Status          string  `json:"status"`
	Substatus       string  `json:"substatus,omitempty"`
	Direction       string  `json:"direction,omitempty"`
	Type            string  `json:"type,omitempty"`
	Qualification   string  `json:"qualification,omitempty"`
	CustomerName    string  `json:"customer_name,omitempty"`
	Country         string  `json:"country,omitempty"`
	DealValue       float64 `json:"deal_value,omitempty"`
	Currency        string  `json:"currency,omitempty"`
	ClosingDate     string  `json:"closing_date,omitempty"`
	Registrations   int     `json:"registrations,omitempty"`
	CreatedDateTime string  `json:"created,omitempty"`
	UpdatedDateTime string  `json:"updated,omitempty"`
	ETag            string  `json:"etag,omitempty"`
}

// ReferralList is a page of referrals.
type ReferralList struct {
	Referrals []Row          `json:"referrals"`
	Full      []FullReferral `json:"full,omitempty"`
	// Filter is the OData $filter that was sent, for the agent to reuse or refine.
	Filter     string `json:"filter,omitempty"`
	HasMore    bool   `json:"has_more"`
	NextCursor string `json:"next_cursor,omitempty"`
}

// listCursor is the opaque continuation of a listing.
type listCursor struct {
	Filter  string `json:"f,omitempty"`
	OrderBy string `json:"o,omitempty"`
	Skip    int    `json:"k"`
}

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
	if err != nil || c.Skip < 0 {
		return c, tools.InvalidArgument("cursor", "cursor is not one this tool returned; start again without it")
	}
	return c, nil
}

// pageSize is how many referrals one upstream page asks for.
const pageSize = 100

func (s *service) listReferrals(ctx context.Context, in ListReferralsArgs) (ReferralList, error) {
	cur, err := s.listQuery(in)
	if err != nil {
		return ReferralList{}, err
	}
	limit := in.Limit
	if limit == 0 {
		limit = 25
	}
	out := ReferralList{Referrals: []Row{}, Filter: cur.Filter}
	page, err := s.conn(ctx).ListReferrals(ctx, pc.ListParams{Filter: cur.Filter, OrderBy: cur.OrderBy, Top: min(limit, pageSize), Skip: cur.Skip})
	var got []pc.Referral
	for err == nil {
		got = append(got, page.Value...)
		if len(got) >= limit || page.NextLink == "" {
			break
		}
		page, err = s.conn(ctx).NextPage(ctx, page.NextLink)
	}
	if err != nil {
		return ReferralList{}, err
	}
	if len(got) > limit || page.NextLink != "" {
		out.HasMore = true
		got = got[:min(len(got), limit)]
		out.NextCursor = encodeCursor(listCursor{Filter: cur.Filter, OrderBy: cur.OrderBy, Skip: cur.Skip + len(got)})
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

// listQuery compiles the arguments (or the cursor) into $filter/$orderby.
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
	order := in.OrderBy
	if order == "" {
		order = "updatedDateTime desc"
	}
	return listCursor{Filter: f.String(), OrderBy: order}, nil
}

// forOutput makes a referral fit the declared output schema: the
// definition leaves customerProfile.ids and requirement items untyped and
// the documentation shows objects, so anything else is dropped rather than
// breaking a client that validates results.
func forOutput(r pc.Referral) FullReferral {
	if cp := r.CustomerProfile; cp != nil && len(cp.IDs) > 0 && !isObject(cp.IDs) {
		c := *cp
		c.IDs = nil
		r.CustomerProfile = &c
	}
	if d := r.Details; d != nil && d.Requirements != nil {
		req := *d.Requirements
		req.Solutions, req.Offers = objectsOnly(req.Solutions), objectsOnly(req.Offers)
		dd := *d
		dd.Requirements = &req
		r.Details = &dd
	}
	return FullReferral(r)
}

func isObject(raw json.RawMessage) bool {
	var m map[string]any
	return json.Unmarshal(raw, &m) == nil && m != nil
}

func objectsOnly(items []json.RawMessage) []json.RawMessage {
	var out []json.RawMessage
	for _, it := range items {
		if isObject(it) {
			out = append(out, it)
		}
	}
	return out
}

// RowOf returns a referral as partnercenter_list_referrals lists it.
func RowOf(r pc.Referral) Row { return rowOf(&r) }

// FullOf returns a referral as partnercenter_get_referral returns it.
func FullOf(r pc.Referral) FullReferral { return forOutput(r) }

func rowOf(r *pc.Referral) Row {
	row := Row{
		ID: r.ID, Name: r.Name, Status: r.Status, Substatus: r.Substatus, Direction: r.Direction, Type: r.Type,
		Qualification: r.Qualification, Registrations: len(r.Registrations),
		CreatedDateTime: r.CreatedDateTime, UpdatedDateTime: r.UpdatedDateTime, ETag: r.ETag,
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

// JSONSchema implements the schema generator's override.
func (FullReferral) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{Type: "object", AdditionalProperties: jsonschema.TrueSchema,
		Description: "A Partner Center referral (id, name, status, substatus, eTag, customerProfile, details, team, registrations …)."}
}

// ReferralIDArgs identifies a referral.
type ReferralIDArgs struct {
	ID string `json:"id" jsonschema:"minLength=1" jsonschema_description:"Referral id."`
}

// ReferralResult wraps one full referral.
type ReferralResult struct {
	Referral FullReferral `json:"referral"`
}

func (s *service) getReferral(ctx context.Context, in ReferralIDArgs) (ReferralResult, error) {
	r, err := s.conn(ctx).GetReferral(ctx, in.ID)
	if err != nil {
		return ReferralResult{}, err
	}
	s.versionsFor(ctx).remember(r)
	return ReferralResult{Referral: forOutput(*r)}, nil
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
		return version{}, err
	}
	s.versionsFor(ctx).remember(r)
	if normalizeETag(r.ETag) != normalizeETag(etag) {
		return version{}, conflict(id)
	}
	v, _ := s.versionsFor(ctx).lookup(id, etag)
	return v, nil
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
		return ReferralResult{}, err
	}
	if r == nil {
		return s.getReferral(ctx, ReferralIDArgs{ID: id})
	}
	s.versionsFor(ctx).remember(r)
	return ReferralResult{Referral: forOutput(*r)}, nil
}
