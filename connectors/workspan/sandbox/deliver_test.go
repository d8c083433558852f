package sandbox

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
)

// fastDelivery are delivery options with short retries. Retries wait on the env's fake clock,
// so these durations are simulated time: short ones keep the time a test lets pass far below
// the lifetime of its access token.
func fastDelivery() Options {
	return Options{RetryBase: time.Millisecond, RetryMax: 10 * time.Millisecond}
}

// hangGuard bounds every wait of these tests. The tests wait for events (a request received,
// a delivery recorded, a timer armed), never for time to pass; only a hung test reaches it.
const hangGuard = 60 * time.Second

// guard returns a context that ends after hangGuard.
func guard(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	t.Cleanup(cancel)
	return ctx
}

// receive waits for a value on ch.
func receive[T any](t *testing.T, ctx context.Context, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-ctx.Done():
		t.Fatalf("%s: %v", what, ctx.Err())
		panic("unreachable")
	}
}

// hit is one webhook request received.
type hit struct {
	eventID     string // X-WS-Event-Id header
	contentType string
	body        map[string]any
}

func (h hit) event() string { return h.body["event"].(string) }

// receiver is a webhook endpoint. respond chooses the status of the n-th request (1-based);
// nil answers 200. It may block until release or quit is closed.
type receiver struct {
	ts      *httptest.Server
	quit    chan struct{}
	mu      sync.Mutex
	hits    []hit
	respond func(n int, h hit, r *http.Request) int
}

func newReceiver(t *testing.T, respond func(n int, h hit, r *http.Request) int) *receiver {
	t.Helper()
	rc := &receiver{quit: make(chan struct{}), respond: respond}
	rc.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		h := hit{eventID: r.Header.Get("X-WS-Event-Id"), contentType: r.Header.Get("Content-Type")}
		if err := json.Unmarshal(raw, &h.body); err != nil || r.Method != http.MethodPost {
			w.WriteHeader(http.StatusTeapot)
			return
		}
		rc.mu.Lock()
		rc.hits = append(rc.hits, h)
		n := len(rc.hits)
		rc.mu.Unlock()
		status := http.StatusOK
		if rc.respond != nil {
			status = rc.respond(n, h, r)
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(func() {
		close(rc.quit)
		rc.ts.Close()
	})
	return rc
}

func (rc *receiver) got() []hit {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]hit(nil), rc.hits...)
}

// subscribeTo subscribes a receiver to events of an integration; extra adds body fields.
func (e *env) subscribeTo(rc *receiver, integrationID string, events any, extra map[string]any) string {
	e.t.Helper()
	body := map[string]any{
		"integration_id": integrationID, "event": events, "name": "hook", "subscriber_type": "webhook",
		"webhook_settings": map[string]any{"callback_url": rc.ts.URL + "/hook"},
	}
	for k, v := range extra {
		body[k] = v
	}
	return e.call(http.MethodPost, "/event/v1/subscriber", body).ok(e.t, http.StatusOK)["subscriber_id"].(string)
}

func (e *env) waitDelivered(n int) {
	e.t.Helper()
	require.NoError(e.t, e.srv.WaitDelivered(guard(e.t), n))
}

// changes returns a channel that is closed at the next change of the deliveries.
func (e *env) changes() <-chan struct{} {
	d := e.srv.deliveries
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.changed
}

// waitDeliveries waits until cond holds for the delivery records, re-checking it whenever the
// deliveries change (an event raised, an attempt completed, a subscriber deleted), and returns
// the records that satisfied it.
func (e *env) waitDeliveries(ctx context.Context, what string, cond func([]Delivery) bool) []Delivery {
	e.t.Helper()
	for {
		changed := e.changes()
		recs := e.srv.Deliveries()
		if cond(recs) {
			return recs
		}
		select {
		case <-changed:
		case <-ctx.Done():
			e.t.Fatalf("waiting for %s: %v; deliveries: %+v", what, ctx.Err(), recs)
		}
	}
}

// driveRetries lets time pass on the env's fake clock whenever the delivery loop waits for a
// retry, until done holds; done is re-checked whenever the deliveries change. step must be at
// least the RetryMax of the sandbox: one step then makes every retry already scheduled due,
// whether or not the armed timer is still the one seen.
func (e *env) driveRetries(ctx context.Context, step time.Duration, what string, done func() bool) {
	e.t.Helper()
	for {
		changed := e.changes()
		if done() {
			return
		}
		armed := make(chan error, 1)
		wctx, cancel := context.WithCancel(ctx)
		go func() { armed <- e.clock.WaitForWaiters(wctx, 1) }()
		select {
		case err := <-armed:
			cancel()
			if err == nil {
				e.clock.Advance(step)
			}
		case <-changed:
			cancel()
			<-armed
		}
		if ctx.Err() != nil {
			e.t.Fatalf("waiting for %s: %v; deliveries: %+v", what, ctx.Err(), e.srv.Deliveries())
		}
	}
}

// nextAttempt returns the earliest time of the next attempt of a pending event.
func nextAttempt(s *Server, eventID string) time.Time {
	d := s.deliveries
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.records {
		if p.rec.EventID == eventID {
			return p.next
		}
	}
	return time.Time{}
}

// deliveryIdle reports whether no event waits for delivery and no attempt is in flight: nothing
// more can be sent until a new event is raised, whatever the clock does.
func deliveryIdle(s *Server) bool {
	d := s.deliveries
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.pending == 0 && d.inFlight == 0
}

// finishedFor returns a condition that holds when a subscriber has n events, none pending.
func finishedFor(s *Server, subscriberID string, n int) func() bool {
	return func() bool {
		recs := deliveriesOf(s, subscriberID)
		for _, d := range recs {
			if d.Status == DeliveryPending {
				return false
			}
		}
		return len(recs) == n
	}
}

// loadJSON bulk loads JSON rows into an integration and waits for the execution.
func (e *env) loadJSON(integrationID string, rows ...map[string]any) {
	e.t.Helper()
	buf, err := json.Marshal(rows)
	require.NoError(e.t, err)
	_, st := e.load("/bulk/v1/bulkload?data_format=json&integration_id="+integrationID, string(buf),
		"Content-Type", "application/json")
	require.EqualValues(e.t, 0, st["error_count"], "errors: %v", st["errors"])
}

func deliveriesOf(s *Server, subscriberID string) []Delivery {
	var out []Delivery
	for _, d := range s.Deliveries() {
		if d.SubscriberID == subscriberID {
			out = append(out, d)
		}
	}
	return out
}

func events(hits []hit) []string {
	var out []string
	for _, h := range hits {
		out = append(out, h.event())
	}
	return out
}

func TestDeliveryBulkCreate(t *testing.T) {
	e := newEnv(t, fastDelivery())
	all, other, deletes := newReceiver(t, nil), newReceiver(t, nil), newReceiver(t, nil)
	allID := e.subscribeTo(all, "int-crm-001", "object.all", nil)
	otherID := e.subscribeTo(other, "int-pc-001", "object.all", nil)
	deletesID := e.subscribeTo(deletes, "int-crm-001", []any{"object.delete"}, nil)

	const n = 30
	var csv strings.Builder
	csv.WriteString("name,stage,amount,currency,close_date,partner,country,crm_opportunity_id\n")
	for i := range n {
		fmt.Fprintf(&csv, "Deal %02d,Qualify,%d,usd,2026-12-01,Microsoft,us,CRM-%02d\n", i, 1000+i, i)
	}
	e.load("/bulk/v1/bulkload?integration_id=int-crm-001&data_format=csv", csv.String())
	e.waitDelivered(n)

	hits := all.got()
	require.Len(t, hits, n)
	seen := map[string]bool{}
	for i, h := range hits {
		b := h.body
		assert.Equal(t, "object.create", b["event"])
		assert.Equal(t, "application/json", h.contentType)
		assert.Equal(t, h.eventID, b["event_id"])
		assert.True(t, strings.HasPrefix(h.eventID, "evt_"), h.eventID)
		assert.False(t, seen[h.eventID], "event ids are unique")
		seen[h.eventID] = true
		assert.Equal(t, allID, b["subscriber_id"])
		assert.Equal(t, "int-crm-001", b["integration_id"])
		assert.Equal(t, "opportunity", b["object_type"])
		occurred, err := time.Parse(time.RFC3339, b["occurred_at"].(string))
		require.NoError(t, err)
		assert.Equal(t, testNow, occurred)
		// Rows are processed in order and one subscriber's events are delivered in order.
		assert.Equal(t, fmt.Sprintf("Deal %02d", i), b["name"])
		assert.Equal(t, "Qualify", b["stage"])
		assert.EqualValues(t, 1000+i, b["amount"])
		assert.Equal(t, "USD", b["currency"])
		assert.Equal(t, "2026-12-01", b["close_date"])
		assert.Equal(t, "Microsoft", b["partner"])
		assert.Equal(t, "US", b["country"])
		assert.Equal(t, fmt.Sprintf("CRM-%02d", i), b["crm_opportunity_id"])
		assert.NotContains(t, b, "previous_stage")
		doc, found := e.srv.Object(b["object_id"].(string))
		require.True(t, found)
		assert.Equal(t, b["name"], doc["name"])
	}

	recs := deliveriesOf(e.srv, allID)
	require.Len(t, recs, n)
	for i, d := range recs {
		assert.Equal(t, DeliveryDelivered, d.Status)
		assert.Equal(t, 1, d.Attempts)
		assert.Equal(t, http.StatusOK, d.LastStatus)
		assert.Equal(t, hits[i].eventID, d.EventID)
		assert.Equal(t, "object.create", d.Event)
		assert.Equal(t, all.ts.URL+"/hook", d.CallbackURL)
		assert.Empty(t, d.LastError)
		assert.False(t, d.FinishedAt.IsZero())
	}
	assert.Empty(t, deliveriesOf(e.srv, otherID), "another integration")
	assert.Empty(t, deliveriesOf(e.srv, deletesID), "object.delete only")
	assert.Empty(t, other.got())
	assert.Empty(t, deletes.got())
}

func TestDeliveryUpdatesAndStageChange(t *testing.T) {
	e := newEnv(t, fastDelivery())
	opps := e.opportunityIDs()
	opp := opps[0]
	before, _ := e.srv.Object(opp)
	newStage := "Closed Won"
	if before["stage"] == newStage {
		newStage = "Closed Lost"
	}
	all, stages, pc := newReceiver(t, nil), newReceiver(t, nil), newReceiver(t, nil)
	e.subscribeTo(all, "int-crm-001", []any{"object.all"}, nil)
	e.subscribeTo(stages, "int-crm-001", "object.stage_change", nil)
	pcID := e.subscribeTo(pc, "int-pc-001", []any{"object.update", "object.partner_center_referral_submit"}, nil)

	// A stage change raises object.update then object.stage_change.
	e.loadJSON("int-crm-001", map[string]any{"opportunity_id": opp, "stage": strings.ToLower(newStage)})
	e.waitDelivered(3)
	got := all.got()
	require.Equal(t, []string{"object.update", "object.stage_change"}, events(got))
	for _, h := range got {
		assert.Equal(t, opp, h.body["object_id"])
		assert.Equal(t, newStage, h.body["stage"])
		assert.Equal(t, before["stage"], h.body["previous_stage"])
	}
	assert.NotEqual(t, got[0].eventID, got[1].eventID)
	require.Equal(t, []string{"object.stage_change"}, events(stages.got()))

	// A row that changes nothing raises nothing; another field raises object.update only.
	e.loadJSON("int-crm-001", map[string]any{"opportunity_id": opp, "stage": newStage})
	e.loadJSON("int-crm-001", map[string]any{"opportunity_id": opp, "amount": 4242})
	e.waitDelivered(4)
	got = all.got()
	require.Equal(t, []string{"object.update", "object.stage_change", "object.update"}, events(got))
	assert.EqualValues(t, 4242, got[2].body["amount"])
	assert.NotContains(t, got[2].body, "previous_stage")

	// Connecting a CRM id is a CRM update; the same value again changes nothing.
	e.call(http.MethodPatch, "/app/v1/object/"+opp+"/external_id", map[string]any{"external_id": "0061x00000NEW"}).ok(t, http.StatusOK)
	e.call(http.MethodPatch, "/app/v1/object/"+opp+"/external_id", map[string]any{"external_id": "0061x00000NEW"}).ok(t, http.StatusOK)
	e.waitDelivered(5)
	got = all.got()
	require.Len(t, got, 4)
	assert.Equal(t, "object.update", got[3].event())
	assert.Equal(t, "0061x00000NEW", got[3].body["crm_opportunity_id"])

	// A Partner Center field and audits go to the Partner Center integration by default.
	e.call(http.MethodPatch, "/app/v1/object/"+opp+"/external_id", map[string]any{
		"external_id": "REF-1", "field_name": "partner_center.referral_id"}).ok(t, http.StatusOK)
	e.call(http.MethodPatch, "/app/v1/object/"+opp+"/audit", map[string]any{
		"field_name": "partner_center.integration_status", "status_code": "SCHEDULED", "message": "queued"}).ok(t, http.StatusOK)
	e.call(http.MethodPatch, "/app/v1/object/"+opp+"/audit", map[string]any{
		"field_name": "partner_center.integration_status", "status_code": "CREATE_FAILED", "message": "no"}).ok(t, http.StatusOK)
	// An audit naming the CRM integration goes to CRM subscribers.
	e.call(http.MethodPatch, "/app/v1/object/"+opp+"/audit", map[string]any{
		"field_name": "partner_center.integration_status", "status_code": "SCHEDULED", "message": "again",
		"integration_id": "int-crm-001"}).ok(t, http.StatusOK)
	e.waitDelivered(11)
	pcHits := pc.got()
	require.Equal(t, []string{"object.update", "object.update", "object.partner_center_referral_submit", "object.update"}, events(pcHits))
	assert.Equal(t, "REF-1", pcHits[0].body["partner_center_referral_id"])
	assert.Equal(t, "SCHEDULED", pcHits[2].body["partner_center_integration_status"])
	assert.Equal(t, "int-pc-001", pcHits[2].body["integration_id"])
	assert.Equal(t, pcID, pcHits[2].body["subscriber_id"])
	assert.Equal(t, "CREATE_FAILED", pcHits[3].body["partner_center_integration_status"])
	got = all.got()
	require.Len(t, got, 6)
	assert.Equal(t, []string{"object.update", "object.partner_center_referral_submit"}, events(got[4:]))

	// Account changes carry account fields.
	acct := e.accountID()
	e.call(http.MethodPatch, "/app/v1/object/"+acct+"/external_id", map[string]any{"external_id": "001ACME"}).ok(t, http.StatusOK)
	e.waitDelivered(12)
	got = all.got()
	require.Len(t, got, 7)
	assert.Equal(t, "account", got[6].body["object_type"])
	assert.Equal(t, "001ACME", got[6].body["external_account_id"])
	assert.NotContains(t, got[6].body, "stage")
}

func TestDeliveryObjectIDsAndFilters(t *testing.T) {
	e := newEnv(t, fastDelivery())
	opps := e.opportunityIDs()
	o1, o2, o3 := opps[0], opps[1], opps[2]
	byID, closedMS, either, notIn := newReceiver(t, nil), newReceiver(t, nil), newReceiver(t, nil), newReceiver(t, nil)
	e.subscribeTo(byID, "int-crm-001", "object.update", map[string]any{"object_ids": []any{o1}})
	e.subscribeTo(closedMS, "int-crm-001", "object.update", map[string]any{
		"filters": `(stage in [ "closed won", "CLOSED LOST" ]) AND (sales_details.partner = "microsoft")`})
	e.subscribeTo(either, "int-crm-001", "object.all", map[string]any{
		"filters": `partner = 'Trey Research' or (amount == 2 and country != "xx")`})
	e.subscribeTo(notIn, "int-crm-001", "object.update", map[string]any{
		"filters": `NOT (stage not in ["Propose"]) AND custom_region = "west"`})

	e.loadJSON("int-crm-001",
		map[string]any{"opportunity_id": o1, "stage": "Propose", "partner": "Microsoft", "amount": 1, "custom_region": "West"},
		map[string]any{"opportunity_id": o2, "stage": "Closed Won", "partner": "Microsoft", "amount": 2},
		map[string]any{"opportunity_id": o3, "stage": "Closed Lost", "partner": "Trey Research", "amount": 3},
	)
	objectsOf := func(rc *receiver) []string {
		var ids []string
		for _, h := range rc.got() {
			if h.event() == "object.update" {
				ids = append(ids, h.body["object_id"].(string))
			}
		}
		return ids
	}
	// Events are raised as rows are processed, so all are recorded once the load completed.
	raised := e.srv.Deliveries()
	require.NotEmpty(t, raised)
	e.waitDelivered(len(raised))
	assert.Equal(t, []string{o1}, objectsOf(byID))
	assert.Equal(t, []string{o2}, objectsOf(closedMS))
	assert.Equal(t, []string{o2, o3}, objectsOf(either))
	assert.Equal(t, []string{o1}, objectsOf(notIn))
}

func TestSubscribeRejectsBadFilters(t *testing.T) {
	e := newEnv(t, Options{})
	for _, f := range []string{
		`stage = `, `(stage = "a"`, `stage in "a"`, `stage in ["a",]`, `stage ~ "a"`, `= "a"`,
		`stage = "a" AND`, `stage = "unterminated`, `stage = "a" "b"`, `and = "a"`, `stage not = "a"`,
		`stage ! "a"`, `stage = "a" )`, strings.Repeat("(", 100) + `a = "b"` + strings.Repeat(")", 100),
	} {
		body := validSubscriber()
		body["filters"] = f
		assert.Contains(t, e.call(http.MethodPost, "/event/v1/subscriber", body).failed(t, http.StatusBadRequest),
			"Invalid filters", f)
	}
	for _, f := range []string{"", "  ", `(stage in [ "closed", "won", "lost" ]) AND (sales_details.partner = "P1")`,
		`stage in []`, `a = b OR NOT c = 'd\'e'`} {
		body := validSubscriber()
		body["filters"] = f
		e.call(http.MethodPost, "/event/v1/subscriber", body).ok(t, http.StatusOK)
	}
}

func TestFilterEvaluation(t *testing.T) {
	values := map[string]string{"stage": "Closed Won", "partner": "P1", "amount": "125000", "empty": ""}
	lookup := func(f string) string { return values[f] }
	for src, want := range map[string]bool{
		`(stage in [ "closed", "won", "lost" ]) AND (sales_details.partner = "P1")`: false,
		`(stage in [ "closed won", "lost" ]) AND (partner = "p1")`:                  true,
		`stage = "x" OR partner = "P1" AND amount = 125000.0`:                       true,
		`(stage = "x" OR partner = "P1") AND amount = 1`:                            false,
		`empty = ""`:                   true,
		`missing = ""`:                 true,
		`stage != "closed won"`:        false,
		`NOT NOT stage = "Closed Won"`: true,
		`stage in []`:                  false,
		`stage not in []`:              true,
	} {
		x, err := parseFilter(src)
		require.NoError(t, err, src)
		assert.Equal(t, want, x.eval(lookup), src)
	}
}

func TestDeliveryRetriesWithSameEventID(t *testing.T) {
	opts := fastDelivery()
	e := newEnv(t, opts)
	ctx := guard(t)
	rc := newReceiver(t, func(n int, _ hit, _ *http.Request) int {
		if n <= 2 {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	})
	e.subscribeTo(rc, "int-crm-001", "object.update", nil)
	opp := e.opportunityIDs()[0]
	e.call(http.MethodPatch, "/app/v1/object/"+opp+"/external_id", map[string]any{"external_id": "X-1"}).ok(t, http.StatusOK)

	// The first attempt fails at once; each retry waits for its backoff on the fake clock,
	// which moves only when the test advances it.
	e.waitDeliveries(ctx, "the first attempt", func(recs []Delivery) bool {
		return len(recs) == 1 && recs[0].LastStatus == http.StatusInternalServerError
	})
	var elapsed time.Duration
	for n := 1; n <= 2; n++ {
		// The loop arms its timer for the retry only once attempt n has failed: the timer of
		// the previous retry fired (and left the fake clock) before attempt n started.
		require.NoError(t, e.clock.WaitForWaiters(ctx, 1), "retry %d", n)
		recs := e.srv.Deliveries()
		require.Len(t, recs, 1)
		assert.Equal(t, DeliveryPending, recs[0].Status)
		assert.Equal(t, n, recs[0].Attempts)
		assert.Equal(t, http.StatusInternalServerError, recs[0].LastStatus)
		assert.Contains(t, recs[0].LastError, "500")

		// The clock has not moved since attempt n failed (each advance below ends exactly on
		// a due time), and the retry is due a backoff from [b/2, b] later, b = RetryBase·2^(n-1).
		b := opts.RetryBase << (n - 1)
		backoff := nextAttempt(e.srv, recs[0].EventID).Sub(e.clock.Now())
		assert.GreaterOrEqual(t, backoff, b/2, "retry %d", n)
		assert.LessOrEqual(t, backoff, b, "retry %d", n)
		// Until then the timer stays armed and nothing is sent again; then it fires.
		e.clock.Advance(backoff - time.Nanosecond)
		assert.Equal(t, 1, e.clock.Waiters(), "retry %d just before it is due", n)
		assert.Len(t, rc.got(), n)
		assert.Equal(t, n, e.srv.Deliveries()[0].Attempts)
		e.clock.Advance(time.Nanosecond)
		elapsed += backoff
	}
	e.waitDelivered(1)
	hits := rc.got()
	require.Len(t, hits, 3)
	for _, h := range hits {
		assert.Equal(t, hits[0].eventID, h.eventID)
		assert.Equal(t, hits[0].eventID, h.body["event_id"])
		assert.Equal(t, hits[0].body, h.body, "the payload is the same on every attempt")
	}
	recs := e.srv.Deliveries()
	require.Len(t, recs, 1)
	assert.Equal(t, DeliveryDelivered, recs[0].Status)
	assert.Equal(t, 3, recs[0].Attempts)
	assert.Equal(t, http.StatusNoContent, recs[0].LastStatus)
	assert.Empty(t, recs[0].LastError)
	// Timestamps follow the clock.
	assert.Equal(t, testNow, recs[0].EnqueuedAt)
	assert.Equal(t, testNow.Add(elapsed), recs[0].FinishedAt)

	// No delivery after a success: nothing is left to send, however much time passes.
	require.True(t, deliveryIdle(e.srv))
	e.clock.Advance(100 * opts.RetryMax)
	assert.True(t, deliveryIdle(e.srv))
	assert.Len(t, rc.got(), 3, "no delivery after a success")
	assert.Equal(t, 3, e.srv.Deliveries()[0].Attempts)
}

func TestDeliveryOrderAcrossRetries(t *testing.T) {
	opts := fastDelivery()
	opts.DeliveryConcurrency = 2
	e := newEnv(t, opts)
	var (
		concMu           sync.Mutex
		inHandler, maxIn int
	)
	flaky := func() *receiver {
		var mu sync.Mutex
		seen := map[string]bool{}
		return newReceiver(t, func(_ int, h hit, _ *http.Request) int {
			concMu.Lock()
			inHandler++
			maxIn = max(maxIn, inHandler)
			concMu.Unlock()
			defer func() {
				concMu.Lock()
				inHandler--
				concMu.Unlock()
			}()
			mu.Lock()
			defer mu.Unlock()
			if !seen[h.eventID] {
				seen[h.eventID] = true
				return http.StatusBadGateway
			}
			return http.StatusOK
		})
	}
	rcs := []*receiver{flaky(), flaky(), flaky()}
	var ids []string
	for _, rc := range rcs {
		ids = append(ids, e.subscribeTo(rc, "int-crm-001", "object.all", nil))
	}
	const n = 12
	rows := make([]map[string]any, n)
	for i := range rows {
		rows[i] = map[string]any{"name": fmt.Sprintf("Deal %d", i), "stage": "Prospect"}
	}
	e.loadJSON("int-crm-001", rows...)
	// Every event fails once; its retry waits for fake time to pass.
	e.driveRetries(guard(t), opts.RetryMax, "every event delivered", func() bool {
		d := e.srv.deliveries
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.delivered >= n*len(rcs)
	})
	e.waitDelivered(n * len(rcs))
	for i, rc := range rcs {
		recs := deliveriesOf(e.srv, ids[i])
		require.Len(t, recs, n)
		var want []string
		for _, d := range recs {
			assert.Equal(t, DeliveryDelivered, d.Status)
			assert.Equal(t, 2, d.Attempts)
			want = append(want, d.EventID, d.EventID)
		}
		var gotIDs []string
		for j, h := range rc.got() {
			gotIDs = append(gotIDs, h.eventID)
			assert.Equal(t, fmt.Sprintf("Deal %d", j/2), h.body["name"])
		}
		assert.Equal(t, want, gotIDs, "each event is retried before the next is sent")
	}
	concMu.Lock()
	defer concMu.Unlock()
	assert.LessOrEqual(t, maxIn, opts.DeliveryConcurrency, "requests in flight")
	assert.Positive(t, maxIn)
}

func TestDeliveryDroppedAfterMaxAttempts(t *testing.T) {
	opts := fastDelivery()
	opts.MaxAttempts = 3
	e := newEnv(t, opts)
	var mu sync.Mutex
	down := true
	rc := newReceiver(t, func(int, hit, *http.Request) int {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	subID := e.subscribeTo(rc, "int-crm-001", "object.all", nil)
	// A callback nobody listens on fails with a network error.
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	goneID := e.call(http.MethodPost, "/event/v1/subscriber", map[string]any{
		"integration_id": "int-crm-001", "event": "object.all", "name": "gone", "subscriber_type": "webhook",
		"webhook_settings": map[string]any{"callback_url": gone.URL + "/hook"},
	}).ok(t, http.StatusOK)["subscriber_id"].(string)

	e.loadJSON("int-crm-001", map[string]any{"name": "A", "stage": "Prospect"}, map[string]any{"name": "B", "stage": "Prospect"})
	subDone, goneDone := finishedFor(e.srv, subID, 2), finishedFor(e.srv, goneID, 2)
	e.driveRetries(guard(t), opts.RetryMax, "every event dropped", func() bool { return subDone() && goneDone() })
	for _, d := range deliveriesOf(e.srv, subID) {
		assert.Equal(t, DeliveryDropped, d.Status)
		assert.Equal(t, DropMaxAttempts, d.DropReason)
		assert.Equal(t, 3, d.Attempts)
		assert.Equal(t, http.StatusServiceUnavailable, d.LastStatus)
		assert.Contains(t, d.LastError, "503")
	}
	for _, d := range deliveriesOf(e.srv, goneID) {
		assert.Equal(t, DeliveryDropped, d.Status)
		assert.Equal(t, DropMaxAttempts, d.DropReason)
		assert.Equal(t, 3, d.Attempts)
		assert.Equal(t, 0, d.LastStatus)
		assert.NotEmpty(t, d.LastError)
	}
	assert.Len(t, rc.got(), 6)
	// Nothing is retried after the drop, however much time passes.
	require.True(t, deliveryIdle(e.srv))
	e.clock.Advance(100 * opts.RetryMax)
	assert.True(t, deliveryIdle(e.srv))
	assert.Len(t, rc.got(), 6)

	// Once the receiver is back, new events are delivered.
	mu.Lock()
	down = false
	mu.Unlock()
	e.loadJSON("int-crm-001", map[string]any{"name": "C", "stage": "Prospect"})
	e.waitDelivered(1)
	hits := rc.got()
	require.Len(t, hits, 7)
	assert.Equal(t, "C", hits[6].body["name"])
}

func TestDeliveryStopsWhenSubscriberDeleted(t *testing.T) {
	e := newEnv(t, fastDelivery())
	inFlight, release := make(chan struct{}, 10), make(chan struct{})
	var rc *receiver
	rc = newReceiver(t, func(_ int, _ hit, r *http.Request) int {
		inFlight <- struct{}{}
		select {
		case <-release:
		case <-rc.quit:
		case <-r.Context().Done():
		}
		return http.StatusInternalServerError
	})
	subID := e.subscribeTo(rc, "int-crm-001", "object.all", nil)
	other := newReceiver(t, nil)
	e.subscribeTo(other, "int-crm-001", "object.all", nil)

	e.loadJSON("int-crm-001", map[string]any{"name": "A", "stage": "Prospect"},
		map[string]any{"name": "B", "stage": "Prospect"}, map[string]any{"name": "C", "stage": "Prospect"})
	ctx := guard(t)
	receive(t, ctx, inFlight, "no delivery attempt")
	require.Equal(t, http.StatusOK, e.call(http.MethodDelete, "/event/v1/subscriber/"+subID, nil).status)
	recs := deliveriesOf(e.srv, subID)
	require.Len(t, recs, 3)
	assert.Equal(t, DeliveryPending, recs[0].Status, "in flight")
	for _, d := range recs[1:] {
		assert.Equal(t, DeliveryDropped, d.Status)
		assert.Equal(t, DropSubscriberDeleted, d.DropReason)
		assert.Equal(t, 0, d.Attempts)
	}
	close(release)
	e.waitDeliveries(ctx, "the attempt in flight dropped", func([]Delivery) bool {
		return deliveriesOf(e.srv, subID)[0].Status == DeliveryDropped
	})
	first := deliveriesOf(e.srv, subID)[0]
	assert.Equal(t, DropSubscriberDeleted, first.DropReason)
	assert.Equal(t, 1, first.Attempts, "not retried")
	assert.Contains(t, first.LastError, "500")

	// Later changes raise nothing for the deleted subscriber.
	e.loadJSON("int-crm-001", map[string]any{"name": "D", "stage": "Prospect"})
	e.waitDelivered(4) // the other subscriber's
	assert.Len(t, deliveriesOf(e.srv, subID), 3)
	// Nothing is left to send, however much time passes: the deleted subscriber got only the
	// attempt that was in flight.
	require.True(t, deliveryIdle(e.srv))
	e.clock.Advance(time.Minute)
	assert.True(t, deliveryIdle(e.srv))
	assert.Len(t, rc.got(), 1)
	for _, d := range deliveriesOf(e.srv, subID) {
		assert.Equal(t, DeliveryDropped, d.Status)
	}
}

func TestDeliveryQueueLimitDropsOldest(t *testing.T) {
	opts := fastDelivery()
	opts.QueueLimit = 3
	e := newEnv(t, opts)
	inFlight := make(chan struct{}, 10)
	var rc *receiver
	rc = newReceiver(t, func(_ int, _ hit, r *http.Request) int {
		inFlight <- struct{}{}
		select {
		case <-rc.quit:
		case <-r.Context().Done():
		}
		return http.StatusInternalServerError
	})
	subID := e.subscribeTo(rc, "int-crm-001", "object.all", nil)
	opp := e.opportunityIDs()[0]
	e.call(http.MethodPatch, "/app/v1/object/"+opp+"/external_id", map[string]any{"external_id": "Q-1"}).ok(t, http.StatusOK)
	receive(t, guard(t), inFlight, "no delivery attempt")
	var rows []map[string]any
	for i := range 4 {
		rows = append(rows, map[string]any{"name": fmt.Sprintf("Q%d", i), "stage": "Prospect"})
	}
	e.loadJSON("int-crm-001", rows...)
	recs := deliveriesOf(e.srv, subID)
	require.Len(t, recs, 5)
	var statuses []DeliveryStatus
	for _, d := range recs {
		statuses = append(statuses, d.Status)
	}
	assert.Equal(t, []DeliveryStatus{DeliveryPending, DeliveryDropped, DeliveryDropped, DeliveryPending, DeliveryPending}, statuses)
	assert.Equal(t, DropQueueFull, recs[1].DropReason)
	assert.Equal(t, DropQueueFull, recs[2].DropReason)
}

func TestDeliveryRecordsAreBounded(t *testing.T) {
	e := newEnv(t, fastDelivery())
	e.srv.deliveries.mu.Lock()
	e.srv.deliveries.keepFinished = 2
	e.srv.deliveries.mu.Unlock()
	rc := newReceiver(t, nil)
	e.subscribeTo(rc, "int-crm-001", "object.all", nil)
	var rows []map[string]any
	for i := range 7 {
		rows = append(rows, map[string]any{"name": fmt.Sprintf("R%d", i), "stage": "Prospect"})
	}
	e.loadJSON("int-crm-001", rows...)
	e.waitDelivered(7)
	recs := e.srv.Deliveries()
	assert.LessOrEqual(t, len(recs), 4)
	assert.GreaterOrEqual(t, len(recs), 2)
	assert.Equal(t, rc.got()[6].eventID, recs[len(recs)-1].EventID, "the newest are kept")
}

func TestBackoff(t *testing.T) {
	d := &deliverer{cfg: deliveryConfig{retryBase: 100 * time.Millisecond, retryMax: time.Second}}
	for _, c := range []struct {
		n        int
		min, max time.Duration
	}{{1, 50 * time.Millisecond, 100 * time.Millisecond}, {3, 200 * time.Millisecond, 400 * time.Millisecond},
		{4, 400 * time.Millisecond, 800 * time.Millisecond}, {30, 500 * time.Millisecond, time.Second}} {
		for range 50 {
			b := d.backoff(c.n)
			assert.GreaterOrEqual(t, b, c.min, c.n)
			assert.LessOrEqual(t, b, c.max, c.n)
		}
	}
	cfg := deliveryConfigOf(Options{})
	assert.Equal(t, deliveryConfig{clock: clock.Real(), retryBase: time.Second, retryMax: time.Minute, maxAttempts: 20,
		timeout: 10 * time.Second, concurrency: 4, queueLimit: 100000}, cfg)
	fake := clock.NewFake(testNow)
	cfg = deliveryConfigOf(Options{Clock: fake, RetryBase: time.Minute, RetryMax: time.Second})
	assert.Same(t, fake, cfg.clock, "the clock of the options")
	assert.Equal(t, time.Minute, cfg.retryMax, "at least retryBase")
}

// delivererGoroutines counts the goroutines running delivery code.
func delivererGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "(*deliverer)") {
			n++
		}
	}
	return n
}

func TestCloseStopsDelivery(t *testing.T) {
	baseline := delivererGoroutines()
	e := newEnv(t, fastDelivery())
	inFlight := make(chan struct{}, 10)
	var rc *receiver
	rc = newReceiver(t, func(_ int, _ hit, r *http.Request) int {
		inFlight <- struct{}{}
		select {
		case <-rc.quit:
		case <-r.Context().Done():
		}
		return http.StatusOK
	})
	e.subscribeTo(rc, "int-crm-001", "object.all", nil)
	e.loadJSON("int-crm-001", map[string]any{"name": "A", "stage": "Prospect"}, map[string]any{"name": "B", "stage": "Prospect"})
	ctx := guard(t)
	receive(t, ctx, inFlight, "no delivery attempt")
	assert.Greater(t, delivererGoroutines(), baseline)

	waiting := make(chan error, 1)
	go func() { waiting <- e.srv.WaitDelivered(context.Background(), 1) }()
	closed := make(chan struct{})
	go func() {
		e.srv.Close()
		close(closed)
	}()
	receive(t, ctx, closed, "Close did not return")
	select {
	case <-e.srv.deliveries.done:
	default:
		t.Fatal("the worker is still running")
	}
	assert.ErrorIs(t, <-waiting, ErrClosed)
	e.srv.Close() // idempotent
	// A goroutine whose deferred wg.Done let Close return may still be on
	// its way out: wait for it to leave (no channel tells), up to the guard.
	for delivererGoroutines() > baseline && ctx.Err() == nil {
		runtime.Gosched()
	}
	assert.Equal(t, baseline, delivererGoroutines())

	recs := e.srv.Deliveries()
	require.Len(t, recs, 2)
	assert.Equal(t, DeliveryPending, recs[0].Status)
	assert.Contains(t, recs[0].LastError, "closed")
	assert.Equal(t, DeliveryPending, recs[1].Status)
	assert.Equal(t, 0, recs[1].Attempts)

	// The API still works; new events are recorded but not sent.
	e.loadJSON("int-crm-001", map[string]any{"name": "C", "stage": "Prospect"})
	recs = e.srv.Deliveries()
	require.Len(t, recs, 3)
	assert.Equal(t, DeliveryPending, recs[2].Status)
	// The worker and its attempts are gone (see above), so nothing can be sent any more,
	// however much time passes.
	e.clock.Advance(time.Minute)
	assert.Zero(t, e.clock.Waiters())
	assert.Equal(t, 0, e.srv.Deliveries()[2].Attempts)
	assert.Len(t, rc.got(), 1)
}

func TestWaitDeliveredContext(t *testing.T) {
	e := newEnv(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, e.srv.WaitDelivered(ctx, 1), context.DeadlineExceeded)
	assert.NoError(t, e.srv.WaitDelivered(context.Background(), 0))
}

func TestListenShutdownStopsDelivery(t *testing.T) {
	_, srv, err := Listen("127.0.0.1:0", Options{})
	require.NoError(t, err)
	sb := srv.Handler.(*Server)
	require.NoError(t, srv.Shutdown(context.Background()))
	receive(t, guard(t), sb.deliveries.done, "Shutdown did not stop delivery")
}
