package pipedrive

import (
	"context"
	"slices"
	"strings"

	pd "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
	"github.com/cosell-mcp/cosell-mcp/tools"
)

// UpdateDealArgs are the arguments of pipedrive_update_deal: every field
// given is changed, every other one is left as it is. Value and
// probability are pointers so that 0 is a value, not an omission.
type UpdateDealArgs struct {
	DealID            int64          `json:"deal_id" jsonschema:"minimum=1"`
	Title             string         `json:"title,omitempty" jsonschema:"minLength=1"`
	Value             *float64       `json:"value,omitempty" jsonschema:"minimum=0"`
	Currency          string         `json:"currency,omitempty" jsonschema:"pattern=^[A-Z]{3}$"`
	OwnerID           int64          `json:"owner_id,omitempty" jsonschema:"minimum=1"`
	OrgID             int64          `json:"org_id,omitempty" jsonschema:"minimum=1"`
	PersonID          int64          `json:"person_id,omitempty" jsonschema:"minimum=1"`
	ExpectedCloseDate string         `json:"expected_close_date,omitempty" jsonschema:"format=date"`
	Probability       *float64       `json:"probability,omitempty" jsonschema:"minimum=0,maximum=100"`
	LabelIDs          []int64        `json:"label_ids,omitempty" jsonschema:"minimum=1" jsonschema_description:"Replaces the labels; [] removes them."`
	CustomFields      map[string]any `json:"custom_fields,omitempty" jsonschema_description:"By name, options by label; null clears one."`
	Clear             []string       `json:"clear,omitempty" jsonschema:"enum=probability"`
}

// given reports whether the arguments change anything.
func (in UpdateDealArgs) given() bool {
	return in.Title != "" || in.Value != nil || in.Currency != "" || in.OwnerID != 0 || in.OrgID != 0 || in.PersonID != 0 ||
		in.ExpectedCloseDate != "" || in.Probability != nil || in.LabelIDs != nil || len(in.CustomFields) > 0 || len(in.Clear) > 0
}

func (s *service) updateDeal(ctx context.Context, in UpdateDealArgs) (Deal, error) {
	c, ref := s.at(ctx)
	if !in.given() {
		return Deal{}, tools.InvalidArgument("", "give at least one field to change: title, value, currency, owner_id, org_id, person_id, "+
			"expected_close_date, probability, label_ids, custom_fields or clear (stage: pipedrive_update_deal_stage; status: pipedrive_update_deal_status)")
	}
	if in.Title != "" && strings.TrimSpace(in.Title) == "" {
		return Deal{}, tools.InvalidArgument("title", "title must not be blank")
	}
	if err := tools.CheckDate("expected_close_date", in.ExpectedCloseDate); err != nil {
		return Deal{}, err
	}
	if in.Probability != nil && slices.Contains(in.Clear, pd.FieldProbability) {
		return Deal{}, tools.InvalidArgument("clear", "probability is both given and cleared; give one")
	}
	if err := checkUser(ctx, ref, "owner_id", in.OwnerID); err != nil {
		return Deal{}, err
	}
	patch := pd.DealPatch{
		DealInput: pd.DealInput{
			Title: opt(strings.TrimSpace(in.Title)), Value: in.Value, Currency: opt(in.Currency), OwnerID: opt(in.OwnerID),
			OrgID: opt(in.OrgID), PersonID: opt(in.PersonID), ExpectedCloseDate: opt(in.ExpectedCloseDate),
		},
		Probability: in.Probability,
	}
	if in.LabelIDs != nil {
		labels := slices.Clone(in.LabelIDs) // [] stays an empty list: it removes the labels
		slices.Sort(labels)
		patch.LabelIDs = slices.Compact(labels)
	}
	for _, f := range in.Clear {
		if !slices.Contains(patch.Null, f) {
			patch.Null = append(patch.Null, f)
		}
	}
	if len(in.CustomFields) > 0 {
		set, err := ref.customFields(ctx)
		if err != nil {
			return Deal{}, err
		}
		cf, verr := encodeCustomFields(set, in.CustomFields)
		if verr != nil {
			return Deal{}, verr
		}
		patch.CustomFields = cf
	}
	d, err := c.PatchDeal(ctx, in.DealID, patch)
	if err != nil {
		return Deal{}, err
	}
	snap, _ := ref.get(ctx, false)
	out := shapeDeal(ctx, ref, snap, *d, true)
	nameCustomFields(ctx, ref, &out, d.CustomFields)
	return out, nil
}
