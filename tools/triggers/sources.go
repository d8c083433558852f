package triggers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	pc "github.com/cosell-mcp/cosell-mcp/connectors/partnercenter"
	pd "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
	ws "github.com/cosell-mcp/cosell-mcp/connectors/workspan"
	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/internal/store"
	"github.com/cosell-mcp/cosell-mcp/internal/triggers"
	"github.com/cosell-mcp/cosell-mcp/internal/upstream"
)

// PipedriveInterval is the connector's polling frequency: one poll per 120 s.
const PipedriveInterval = 120 * time.Second

// Clients are the connector clients the trigger kinds use.
type Clients struct {
	Pipedrive     *pd.Client
	PartnerCenter *pc.Client
	WorkSpan      *ws.Client
	// PollInterval overrides the polling pace (never below the connector's
	// own when zero); tests make it short.
	PollInterval time.Duration
	// Clock tells pollers the time ("now" of a new trigger); nil means real.
	Clock clock.Clock
	// PipedriveFor and PartnerCenterFor, when set, give the client of the
	// poll's context (a trigger that polls with its caller's own credential);
	// otherwise Pipedrive and PartnerCenter serve every poll.
	PipedriveFor     func(ctx context.Context) *pd.Client
	PartnerCenterFor func(ctx context.Context) *pc.Client
}

func (c Clients) pipedrive(ctx context.Context) *pd.Client {
	if c.PipedriveFor != nil {
		return c.PipedriveFor(ctx)
	}
	return c.Pipedrive
}

func (c Clients) partnerCenter(ctx context.Context) *pc.Client {
	if c.PartnerCenterFor != nil {
		return c.PartnerCenterFor(ctx)
	}
	return c.PartnerCenter
}

// Kinds returns every trigger kind of the three connectors.
func Kinds(c Clients) []triggers.Kind {
	every := func(def time.Duration) time.Duration {
		if c.PollInterval > 0 {
			return c.PollInterval
		}
		return def
	}
	newDeals := idPoller{list: func(ctx context.Context, cursor string) ([]json.RawMessage, []int64, string, error) {
		deals, resp, err := c.pipedrive(ctx).ListDeals(ctx, pd.ListDealsParams{SortBy: "id", SortDirection: "desc", Limit: 100, Cursor: cursor})
		return rawsOf(deals, func(d pd.Deal) int64 { return d.ID }, resp, err)
	}, prefix: "deal"}
	newActivities := idPoller{list: func(ctx context.Context, cursor string) ([]json.RawMessage, []int64, string, error) {
		acts, resp, err := c.pipedrive(ctx).ListActivities(ctx, pd.ListActivitiesParams{SortBy: "id", SortDirection: "desc", Limit: 100, Cursor: cursor})
		return rawsOf(acts, func(a pd.Activity) int64 { return a.ID }, resp, err)
	}, prefix: "activity"}
	subs := wsSubscriber{client: c.WorkSpan, defaultEvent: ws.EventObjectAll}
	return []triggers.Kind{
		{Name: "pipedrive.new_deal", Base: "pipedrive://triggers/new-deals", Title: "New Pipedrive deals",
			Description: "Deals added in Pipedrive (connector trigger TrigNewDealV2), polled every 120 s.", Poller: newDeals, Interval: every(PipedriveInterval)},
		{Name: "pipedrive.new_deal_deprecated", Base: "pipedrive://triggers/new-deals-deprecated", Title: "New Pipedrive deals [deprecated]",
			Description: "Deprecated: use pipedrive://triggers/new-deals.", Deprecated: true, Poller: newDeals, Interval: every(PipedriveInterval)},
		{Name: "pipedrive.new_activity", Base: "pipedrive://triggers/new-activities", Title: "New Pipedrive activities",
			Description: "Activities added in Pipedrive (connector trigger TrigNewActivity), polled every 120 s.", Poller: newActivities, Interval: every(PipedriveInterval)},
		{Name: "partnercenter.referral_changed", Base: "partnercenter://triggers/referrals", Params: []string{"filter"},
			Title: "Partner Center referrals created or updated", Description: "Referrals whose updatedDateTime moves, polled every 120 s; filter is an optional OData $filter.",
			Poller: referralPoller{client: c.partnerCenter, clock: clock.OrReal(c.Clock)}, Interval: every(PipedriveInterval)},
		{Name: "workspan.object_event", Base: "workspan://triggers/object-events", Params: []string{"event", "filters", "integration_id", "name", "object_ids"},
			Required: []string{"integration_id"}, Title: "WorkSpan object events",
			Description: "Webhook events of an integration's objects; event is a comma list of object.all, object.create, object.update, object.delete, object.stage_change, object.partner_center_referral_submit, report.submit.",
			Webhook:     subs},
		{Name: "workspan.collaboration_event", Base: "workspan://triggers/collaboration-events", Params: []string{"event", "filters", "name", "object_ids"},
			Required: []string{"event"}, Title: "WorkSpan collaboration events", Description: "Webhook events of a collaboration event type.", Webhook: subs},
		{Name: "workspan.referral_submit", Base: "workspan://triggers/partner-center-referral-submit", Params: []string{"integration_id", "name"},
			Required: []string{"integration_id"}, Title: "WorkSpan referral submitted to Partner Center",
			Description: "Webhook events when WorkSpan sends a referral to Microsoft Partner Center.",
			Webhook:     wsSubscriber{client: c.WorkSpan, defaultEvent: ws.EventPartnerCenterReferralSubmit}},
	}
}

// idPoller finds records with ids above a high-water mark, newest first.
type idPoller struct {
	list   func(ctx context.Context, cursor string) (raws []json.RawMessage, ids []int64, next string, err error)
	prefix string
}

type idState struct {
	LastID int64 `json:"last_id"`
}

// maxPollPages bounds one poll, so a burst of records costs bounded budget;
// the rest is found by the next poll.
const maxPollPages = 5

func (p idPoller) Poll(ctx context.Context, _ url.Values, state json.RawMessage) ([]store.NewEvent, json.RawMessage, error) {
	var st idState
	first := len(state) == 0 || string(state) == "null"
	if !first {
		if err := json.Unmarshal(state, &st); err != nil {
			return nil, nil, fmt.Errorf("trigger state: %w", err)
		}
	}
	var found []store.NewEvent
	newest := st.LastID
	cursor := ""
	for page := 0; page < maxPollPages; page++ {
		raws, ids, next, err := p.list(ctx, cursor)
		if err != nil {
			return nil, nil, err
		}
		done := len(ids) == 0 || next == ""
		for i, id := range ids {
			newest = max(newest, id)
			if first || id <= st.LastID {
				done = true
				break
			}
			found = append(found, store.NewEvent{Key: p.prefix + ":" + strconv.FormatInt(id, 10), Payload: raws[i]})
		}
		if first || done {
			break
		}
		cursor = next
	}
	// Oldest first, as readers expect.
	for i, j := 0, len(found)-1; i < j; i, j = i+1, j-1 {
		found[i], found[j] = found[j], found[i]
	}
	out, _ := json.Marshal(idState{LastID: newest})
	return found, out, nil
}

func rawsOf[T any](items []T, id func(T) int64, resp *pd.Response, err error) ([]json.RawMessage, []int64, string, error) {
	if err != nil {
		return nil, nil, "", err
	}
	raws := make([]json.RawMessage, len(items))
	ids := make([]int64, len(items))
	for i, it := range items {
		raws[i], _ = json.Marshal(it)
		ids[i] = id(it)
	}
	next := ""
	if resp != nil {
		next = resp.NextCursor
	}
	return raws, ids, next, nil
}

// referralPoller finds referrals updated after a high-water mark.
type referralPoller struct {
	client func(ctx context.Context) *pc.Client
	clock  clock.Clock
}

type referralState struct {
	Since string `json:"since"`
}

func (p referralPoller) Poll(ctx context.Context, params url.Values, state json.RawMessage) ([]store.NewEvent, json.RawMessage, error) {
	var st referralState
	if len(state) == 0 || string(state) == "null" {
		st.Since = p.clock.Now().UTC().Format(time.RFC3339)
		out, _ := json.Marshal(st)
		return nil, out, nil
	}
	if err := json.Unmarshal(state, &st); err != nil {
		return nil, nil, fmt.Errorf("trigger state: %w", err)
	}
	filter := "updatedDateTime gt " + st.Since
	if f := strings.TrimSpace(params.Get("filter")); f != "" {
		filter = "(" + f + ") and " + filter
	}
	page, err := p.client(ctx).ListReferrals(ctx, pc.ListParams{Filter: filter, OrderBy: "updatedDateTime asc", Top: 100})
	if err != nil {
		return nil, nil, err
	}
	var found []store.NewEvent
	for _, r := range page.Value {
		raw, _ := json.Marshal(r)
		found = append(found, store.NewEvent{Key: "referral:" + r.ID + "@" + r.ETag, Payload: raw})
		if r.UpdatedDateTime > st.Since {
			st.Since = r.UpdatedDateTime
		}
	}
	out, _ := json.Marshal(st)
	return found, out, nil
}

// wsSubscriber registers WorkSpan webhook subscribers.
type wsSubscriber struct {
	client       *ws.Client
	defaultEvent string
}

func (w wsSubscriber) Register(ctx context.Context, params url.Values, callbackURL string) (string, error) {
	name := params.Get("name")
	if name == "" {
		name = "cosell-mcp"
	}
	var events []string
	for _, e := range strings.Split(params.Get("event"), ",") {
		if e = strings.TrimSpace(e); e != "" {
			events = append(events, e)
		}
	}
	if len(events) == 0 {
		events = []string{w.defaultEvent}
	}
	var objectIDs []string
	for _, id := range strings.Split(params.Get("object_ids"), ",") {
		if id = strings.TrimSpace(id); id != "" {
			objectIDs = append(objectIDs, id)
		}
	}
	return w.client.Subscribe(ctx, ws.SubscriberInput{
		IntegrationID: params.Get("integration_id"), Event: events, Name: name, SubscriberType: ws.SubscriberTypeWebhook,
		WebhookSettings: ws.WebhookSettings{CallbackURL: callbackURL}, ObjectIDs: objectIDs, Filters: params.Get("filters"),
	})
}

func (w wsSubscriber) Unregister(ctx context.Context, id string) error {
	err := w.client.DeleteSubscriber(ctx, id)
	var ue *upstream.Error
	if errors.As(err, &ue) && ue.Status == 404 {
		return nil
	}
	return err
}

func (w wsSubscriber) Exists(ctx context.Context, id string) (bool, error) {
	_, err := w.client.GetSubscriber(ctx, id)
	var ue *upstream.Error
	if errors.As(err, &ue) && ue.Status == 404 {
		return false, nil
	}
	return err == nil, err
}
