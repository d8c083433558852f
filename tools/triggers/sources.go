package triggers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
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
	"github.com/cosell-mcp/cosell-mcp/tools"
	pctools "github.com/cosell-mcp/cosell-mcp/tools/partnercenter"
	pdtools "github.com/cosell-mcp/cosell-mcp/tools/pipedrive"
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
	// PollPages bounds the list calls of one poll (default
	// DefaultPollPages): a poll's share of the connection's budget. A
	// larger backlog is finished by the following polls.
	PollPages int
	// PageSize overrides the pollers' page size (default: 500 for
	// Pipedrive, its largest; 100 for Partner Center); tests make it small.
	PageSize int
	// PipedriveShapes shapes Pipedrive events as the tools' results; share
	// the tools' Service so both use one reference-data cache. Nil: a
	// Service of the triggers' own.
	PipedriveShapes *pdtools.Service
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
	pages := c.PollPages
	if pages <= 0 {
		pages = DefaultPollPages
	}
	size := func(def int) int {
		if c.PageSize > 0 {
			return c.PageSize
		}
		return def
	}
	shapes := c.PipedriveShapes
	if shapes == nil {
		shapes = pdtools.NewService(c.pipedrive)
	}
	newDeals := idPoller[pd.Deal]{list: func(ctx context.Context, cursor string, limit int) ([]pd.Deal, string, error) {
		deals, resp, err := c.pipedrive(ctx).ListDeals(ctx, pd.ListDealsParams{SortBy: "id", SortDirection: "desc", Limit: limit, Cursor: cursor})
		return deals, nextCursor(resp), err
	}, id: func(d pd.Deal) int64 { return d.ID }, shape: shapeAll(shapes.ShapeDeals),
		prefix: "deal", pages: pages, size: size(pipedrivePageSize)}
	newActivities := idPoller[pd.Activity]{list: func(ctx context.Context, cursor string, limit int) ([]pd.Activity, string, error) {
		acts, resp, err := c.pipedrive(ctx).ListActivities(ctx, pd.ListActivitiesParams{SortBy: "id", SortDirection: "desc", Limit: limit, Cursor: cursor})
		return acts, nextCursor(resp), err
	}, id: func(a pd.Activity) int64 { return a.ID }, shape: shapeAll(shapes.ShapeActivities),
		prefix: "activity", pages: pages, size: size(pipedrivePageSize)}
	referrals := referralPoller{client: c.partnerCenter, clock: clock.OrReal(c.Clock), pages: pages, size: size(referralPageSize)}
	subs := wsSubscriber{client: c.WorkSpan, defaultEvent: ws.EventObjectAll}
	return []triggers.Kind{
		{Name: "pipedrive.new_deal", Base: "pipedrive://triggers/new-deals", Title: "New Pipedrive deals",
			Description: "Deals added in Pipedrive (connector trigger TrigNewDealV2), polled every 120 s; data as pipedrive_get_deal returns it.",
			Poller:      newDeals, Interval: every(PipedriveInterval), PayloadSchema: dealSchema},
		{Name: "pipedrive.new_deal_deprecated", Base: "pipedrive://triggers/new-deals-deprecated", Title: "New Pipedrive deals [deprecated]",
			Description: "Deprecated: use pipedrive://triggers/new-deals.", Deprecated: true, Poller: newDeals, Interval: every(PipedriveInterval), PayloadSchema: dealSchema},
		{Name: "pipedrive.new_activity", Base: "pipedrive://triggers/new-activities", Title: "New Pipedrive activities",
			Description: "Activities added in Pipedrive (connector trigger TrigNewActivity), polled every 120 s; data as pipedrive_add_activity returns it.",
			Poller:      newActivities, Interval: every(PipedriveInterval), PayloadSchema: tools.SchemaOf[pdtools.Activity]()},
		{Name: "partnercenter.referral_changed", Base: "partnercenter://triggers/referrals", Params: []string{"filter"},
			Title:       "Partner Center referrals created or updated",
			Description: "Referrals whose updatedDateTime moves, polled every 120 s; filter is an optional OData $filter; data as partnercenter_list_referrals lists it (raw: the full referral).",
			Poller:      referrals, Interval: every(PipedriveInterval), PayloadSchema: tools.SchemaOf[pctools.Row]()},
		{Name: "workspan.object_event", Base: "workspan://triggers/object-events", Params: []string{"event", "filters", "integration_id", "name", "object_ids"},
			Required: []string{"integration_id"}, Title: "WorkSpan object events",
			Description: "Webhook events of an integration's objects; event is a comma list of object.all, object.create, object.update, object.delete, object.stage_change, object.partner_center_referral_submit, report.submit.",
			Webhook:     subs, PayloadSchema: workSpanDeliverySchema},
		{Name: "workspan.collaboration_event", Base: "workspan://triggers/collaboration-events", Params: []string{"event", "filters", "name", "object_ids"},
			Required: []string{"event"}, Title: "WorkSpan collaboration events", Description: "Webhook events of a collaboration event type.", Webhook: subs,
			PayloadSchema: workSpanDeliverySchema},
		{Name: "workspan.referral_submit", Base: "workspan://triggers/partner-center-referral-submit", Params: []string{"integration_id", "name"},
			Required: []string{"integration_id"}, Title: "WorkSpan referral submitted to Partner Center",
			Description: "Webhook events when WorkSpan sends a referral to Microsoft Partner Center.",
			Webhook:     wsSubscriber{client: c.WorkSpan, defaultEvent: ws.EventPartnerCenterReferralSubmit}, PayloadSchema: workSpanDeliverySchema},
	}
}

// dealSchema is the payload schema of the new-deal triggers.
var dealSchema = tools.SchemaOf[pdtools.Deal]()

// workSpanDeliverySchema is the payload schema of WorkSpan's webhook
// triggers: WorkSpan posts a flat JSON object whose fields follow the
// integration's object schema, which WorkSpan publishes per integration
// (GET /event/v1/metadata/integration/{id}) rather than in one document.
var workSpanDeliverySchema = json.RawMessage(`{"type":"object","additionalProperties":true,` +
	`"description":"A WorkSpan webhook delivery as posted: a flat JSON object whose fields follow the integration's object schema (WorkSpan publishes it per integration at GET /event/v1/metadata/integration/{id}); event_id, when present, identifies the delivery."}`)

// Poll bounds. One poll of a trigger reads at most DefaultPollPages pages:
// its share of the connection's budget (100 calls per rolling 60 s and one
// poll per 120 s leave 200 calls per interval; one trigger's poll takes at
// most a tenth of them). Polls run with background priority, so the budget
// serves tool calls first. A backlog larger than one poll is finished by the
// following polls, never skipped.
const (
	DefaultPollPages = 20
	// pipedrivePageSize is the largest page of Pipedrive's v2 lists: a list
	// call costs the same tokens whatever its limit.
	pipedrivePageSize = 500
	// referralPageSize is the page size of the referral poller's listings.
	referralPageSize = 100
)

// idPoller finds records whose id is above a high-water mark. Pipedrive's v2
// lists have no "id greater than" filter and page with an opaque cursor, so
// the poller reads the listing newest first (sort_by=id desc) down to its
// mark.
//
// A backlog that one poll cannot read (its page bound, an upstream error
// after some pages) is kept in the state as a stack of segments, newest
// first. (A poll whose context ends stores nothing: the state stored before
// it still says where to resume.)
// A segment is a cursor into the newest-first listing and the highest id it
// owes; the bottom segment owes the ids above the mark (last_id), and each
// segment above owes the ids above the high of the one below it. A poll works
// on the bottom segment: it reads it from its cursor down to the mark, and
// when it gets there it emits the segment's records oldest first, moves the
// mark to the segment's high and goes on with the segment above; when it is
// stopped first, it splits the segment at the page boundaries it has read
// (one segment per page, whose cursors it now knows) and keeps the unread
// rest as the new bottom. So every record is emitted exactly once, in
// ascending id order across polls, and the mark moves only past what was
// emitted. A backlog larger than one poll costs the pages of the polls
// before the last scanning one twice.
//
// The state, e.g. after a poll stopped half way down a burst:
//
//	{"last_id":1200,"backlog":[{"high":11200},{"cursor":"eyJm…","high":10700},{"cursor":"eyJm…","high":10200}]}
//
// (no cursor: the top of the listing). Without a backlog it is {"last_id":1200}.
type idPoller[T any] struct {
	list func(ctx context.Context, cursor string, limit int) (items []T, next string, err error)
	id   func(T) int64
	// shape turns the records a poll emits into its events' payloads (the
	// tools' results); the records themselves are kept as the events' raw.
	shape  func(ctx context.Context, items []T) []json.RawMessage
	prefix string
	pages  int // list calls per poll, at most
	size   int // page size
}

type idState struct {
	// LastID is the high-water mark: every record up to it was emitted (or
	// predates the trigger).
	LastID int64 `json:"last_id"`
	// Backlog is the rest of a backlog a poll could not finish, newest first.
	Backlog []idSegment `json:"backlog,omitempty"`
}

// idSegment owes the records with ids in (the high of the segment below it,
// or the mark, High], read newest first from Cursor ("" is the top of the
// listing).
type idSegment struct {
	Cursor string `json:"cursor,omitempty"`
	High   int64  `json:"high"`
}

// unbounded is the High of the segment that reads the top of the listing
// for whatever is newer than the mark.
const unbounded = math.MaxInt64

func (p idPoller[T]) Poll(ctx context.Context, _ url.Values, state json.RawMessage) ([]store.NewEvent, json.RawMessage, error) {
	var st idState
	if len(state) == 0 || string(state) == "null" {
		// A new trigger marks the newest record and emits nothing.
		items, _, err := p.list(ctx, "", 1)
		if err != nil {
			return nil, nil, err
		}
		for _, it := range items {
			st.LastID = max(st.LastID, p.id(it))
		}
		out, _ := json.Marshal(st)
		return nil, out, nil
	}
	if err := json.Unmarshal(state, &st); err != nil {
		return nil, nil, fmt.Errorf("trigger state: %w", err)
	}
	var (
		found    []T
		failed   error
		progress bool
		fresh    bool // this poll has looked at the top of the listing for new records
	)
	for left := max(p.pages, 1); left > 0; {
		if len(st.Backlog) == 0 {
			if fresh {
				break
			}
			st.Backlog = []idSegment{{High: unbounded}}
			fresh = true
		}
		bottom := len(st.Backlog) - 1
		r := p.readSegment(ctx, st.Backlog[bottom], st.LastID, left)
		left -= r.calls
		if !r.complete {
			st.Backlog = append(st.Backlog[:bottom], r.rest...)
			failed = r.err
			progress = progress || r.read > 0
			break
		}
		found = append(found, r.items...)
		st.LastID = max(st.LastID, r.high)
		st.Backlog = st.Backlog[:bottom]
		progress = true
	}
	if failed != nil && (!progress || ctx.Err() != nil) {
		// Nothing to keep, or no way to store it: the stored state still
		// says where to resume.
		return nil, nil, failed
	}
	// A poll stopped by an upstream error after some pages still stores
	// what it emitted and how far it got; the next poll resumes from there.
	out, _ := json.Marshal(st)
	return p.events(ctx, found), out, nil
}

// events turns the records a poll emits into events: the shaped record as
// the payload, the record as listed as the raw.
func (p idPoller[T]) events(ctx context.Context, items []T) []store.NewEvent {
	if len(items) == 0 {
		return nil
	}
	var shaped []json.RawMessage
	if p.shape != nil {
		shaped = p.shape(ctx, items)
	}
	evs := make([]store.NewEvent, len(items))
	for i, it := range items {
		raw, _ := json.Marshal(it)
		evs[i] = store.NewEvent{Key: p.prefix + ":" + strconv.FormatInt(p.id(it), 10), Payload: raw}
		if i < len(shaped) {
			evs[i].Payload, evs[i].Raw = shaped[i], raw
		}
	}
	return evs
}

// shapeAll adapts a batch shaper to the poller's payloads.
func shapeAll[T, S any](shape func(context.Context, []T) []S) func(context.Context, []T) []json.RawMessage {
	return func(ctx context.Context, items []T) []json.RawMessage {
		out := make([]json.RawMessage, 0, len(items))
		for _, s := range shape(ctx, items) {
			b, err := json.Marshal(s)
			if err != nil {
				return nil // leave the records as they are
			}
			out = append(out, b)
		}
		return out
	}
}

// segmentRead is the outcome of reading one segment.
type segmentRead[T any] struct {
	complete bool
	items    []T         // when complete: the segment's records, oldest first
	high     int64       // when complete: the mark after them
	rest     []idSegment // when not: what replaces the segment, newest first
	calls    int         // list calls made
	read     int         // pages read
	err      error       // the error that stopped the read, if any
}

// readSegment reads seg newest first down to the mark lo with at most calls
// list calls.
func (p idPoller[T]) readSegment(ctx context.Context, seg idSegment, lo int64, calls int) segmentRead[T] {
	type pageMark struct {
		cursor string // the cursor the page was read from
		lowest int64  // its lowest id; 0 for an empty page
	}
	var (
		r      segmentRead[T]
		pages  []pageMark
		owed   []T // the records the segment owes, newest first
		newest int64
	)
	cursor := seg.Cursor
	for r.calls < calls {
		items, next, err := p.list(ctx, cursor, p.size)
		r.calls++
		if err != nil {
			var ue *upstream.Error
			if r.read == 0 && cursor != "" && errors.As(err, &ue) && ue.Status == http.StatusBadRequest {
				// The upstream no longer takes the stored cursor: read the
				// segment from the top of the listing instead.
				cursor, seg.Cursor = "", ""
				continue
			}
			r.err = err
			break
		}
		r.read++
		pm := pageMark{cursor: cursor}
		reached := false
		for _, it := range items {
			id := p.id(it)
			if id <= lo {
				reached = true
				break
			}
			newest = max(newest, id)
			if pm.lowest == 0 || id < pm.lowest {
				pm.lowest = id
			}
			if id <= seg.High {
				owed = append(owed, it)
			}
			if id == lo+1 { // ids are integers: nothing further down is owed
				reached = true
				break
			}
		}
		pages = append(pages, pm)
		if reached || next == "" || next == cursor {
			r.complete = true
			break
		}
		cursor = next
	}
	high := seg.High
	if high == unbounded && newest > 0 {
		high = newest // what is newer than this is left to a later look at the top
	}
	if r.complete {
		for i := len(owed) - 1; i >= 0; i-- {
			r.items = append(r.items, owed[i])
		}
		r.high = max(lo, high)
		if high == unbounded {
			r.high = lo // nothing there at all
		}
		return r
	}
	if r.read == 0 && seg.High == unbounded {
		return r // nothing learnt: the next poll looks at the top afresh
	}
	// Stopped before the mark: one segment per page read (the records it
	// holds are read again later, in order), then the unread rest.
	for _, pm := range pages {
		if pm.lowest == 0 {
			continue
		}
		if below := pm.lowest - 1; below < high {
			r.rest = append(r.rest, idSegment{Cursor: pm.cursor, High: high})
			high = below
		}
	}
	if high > lo {
		r.rest = append(r.rest, idSegment{Cursor: cursor, High: high})
	}
	return r
}

// nextCursor is the cursor of a list reply's next page; "" when none.
func nextCursor(resp *pd.Response) string {
	if resp == nil {
		return ""
	}
	return resp.NextCursor
}

// referralPoller finds referrals updated after a high-water mark: a keyset
// position (updatedDateTime, id) in the order "updatedDateTime asc, id asc".
// Each page is its own keyset query from the last referral emitted,
//
//	$filter=updatedDateTime gt T or (updatedDateTime eq T and id gt 'ID')
//
// so referrals sharing a timestamp across a page boundary are neither
// skipped nor repeated, a poll stopped early resumes exactly where it
// stopped, and @odata.nextLink only tells whether more pages remain. A
// referral updated again later is a new event (its key carries the eTag).
//
// The state is the position of the last referral emitted:
//
//	{"since":"2026-11-02T09:00:01.25Z","id":"5b2d…"}
//
// A new trigger's state marks "now" with no id, which owes every referral
// updated at or after that instant ({"since":"2026-11-02T09:00:00Z"}).
type referralPoller struct {
	client func(ctx context.Context) *pc.Client
	clock  clock.Clock
	pages  int // list calls per poll, at most
	size   int // $top
}

type referralState struct {
	Since string `json:"since"`
	ID    string `json:"id,omitempty"`
}

func (p referralPoller) Poll(ctx context.Context, params url.Values, state json.RawMessage) ([]store.NewEvent, json.RawMessage, error) {
	var st referralState
	if len(state) == 0 || string(state) == "null" {
		st.Since = p.clock.Now().UTC().Format(time.RFC3339Nano)
		out, _ := json.Marshal(st)
		return nil, out, nil
	}
	if err := json.Unmarshal(state, &st); err != nil {
		return nil, nil, fmt.Errorf("trigger state: %w", err)
	}
	since, ok := parseUpdated(st.Since)
	if !ok {
		return nil, nil, fmt.Errorf("trigger state: since %q is not a date-time", st.Since)
	}
	user := strings.TrimSpace(params.Get("filter"))
	var found []store.NewEvent
	for call := 0; call < max(p.pages, 1); call++ {
		filter := referralKeyset(since, st.ID)
		if user != "" {
			filter = "(" + user + ") and (" + filter + ")"
		}
		page, err := p.client(ctx).ListReferrals(ctx, pc.ListParams{Filter: filter, OrderBy: "updatedDateTime asc,id asc", Top: p.size})
		if err != nil {
			if len(found) == 0 || ctx.Err() != nil {
				return nil, nil, err
			}
			break // store what was emitted; the next poll resumes after it
		}
		moved := false
		for _, r := range page.Value {
			t, ok := parseUpdated(r.UpdatedDateTime)
			if !ok || r.ID == "" {
				continue // it cannot be a position; the upstream matched it by a time we cannot read
			}
			raw, _ := json.Marshal(r)
			row, _ := json.Marshal(pctools.RowOf(r))
			found = append(found, store.NewEvent{Key: "referral:" + r.ID + "@" + r.ETag, Payload: row, Raw: raw})
			since, st.ID, moved = t, r.ID, true
		}
		if !moved || page.NextLink == "" {
			break
		}
	}
	st.Since = since.UTC().Format(time.RFC3339Nano)
	out, _ := json.Marshal(st)
	return found, out, nil
}

// referralKeyset is the $filter of the referrals after the position (since, id).
func referralKeyset(since time.Time, id string) string {
	t := since.UTC().Format(time.RFC3339Nano)
	if id == "" {
		return "updatedDateTime ge " + t
	}
	return "updatedDateTime gt " + t + " or (updatedDateTime eq " + t + " and id gt '" + strings.ReplaceAll(id, "'", "''") + "')"
}

// parseUpdated reads an updatedDateTime: RFC 3339 (Partner Center writes
// seven fraction digits), or without a zone, which Partner Center means as UTC.
func parseUpdated(s string) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, true
	}
	t, err := time.ParseInLocation("2006-01-02T15:04:05.999999999", s, time.UTC)
	return t, err == nil
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

// UpstreamURL is the WorkSpan API's base URL, so the manager can refuse a
// callback the upstream cannot reach (a loopback or private URL for a WorkSpan
// that is not itself on loopback).
func (w wsSubscriber) UpstreamURL() string {
	if w.client == nil {
		return ""
	}
	return w.client.BaseURL()
}
