package sandbox

// # Event delivery
//
// The sandbox delivers object events to the webhooks of its subscribers, as the real service
// does for its Power Automate triggers.
//
// Events are raised by changes to objects:
//
//   - a bulk load row that creates an opportunity raises object.create;
//   - a bulk load row that changes an opportunity raises object.update, then
//     object.stage_change when its stage changed (a row that changes nothing raises nothing);
//   - PATCH …/external_id raises object.update when the stored value changed;
//   - PATCH …/audit raises object.update (every audit changes the audit trail and the
//     integration status), then object.partner_center_referral_submit when status_code is
//     SCHEDULED: scheduling a Partner Center sync is how a referral gets submitted.
//
// Every object event belongs to one integration: the integration_id of the bulk load; the
// integration_id of the audit, or the Partner Center integration when it has none; for an
// external id, the Partner Center integration when the field is partner_center.*, else the
// CRM integration (the API takes no integration there). An event goes to every subscriber
// whose event list holds its name (object.all matches every object.* event), whose
// integration_id is the event's, whose object_ids is empty or holds the object, and whose
// filters match the object after the change (see filter.go). Collaboration events and
// report.submit are never raised.
//
// # Payload
//
// Each event is POSTed to the subscriber's callback_url as a flat JSON object with
// Content-Type: application/json:
//
//	{"event": "object.stage_change", "event_id": "evt_…", "subscriber_id": "…",
//	 "integration_id": "int-crm-001", "object_id": "…", "object_type": "opportunity",
//	 "occurred_at": "2026-09-15T12:00:00.000Z",
//	 "name": "…", "stage": "Closed Won", "previous_stage": "Propose", "amount": 125000,
//	 "currency": "USD", "close_date": "2026-12-01", "partner": "Microsoft", "country": "US",
//	 "account_id": "…", "account_name": "Contoso", "crm_opportunity_id": "…",
//	 "partner_center_integration_status": "SCHEDULED", "partner_center_referral_id": null,
//	 "created_at": "…", "modified_at": "…"}
//
// previous_stage is present on object.update and object.stage_change when the stage changed.
// Account events carry name, country, industry, website, external_account_id,
// partner_center_integration_status, created_at and modified_at instead of the opportunity
// fields. Missing values are null. The fields are a snapshot of the object when the event
// was raised; occurred_at follows Options.Now.
//
// The real delivery format is not documented, and the subscribe body has no secret, so
// deliveries are not signed. As a sandbox convenience each request also carries the header
// X-WS-Event-Id with the event_id. An event_id names one event sent to one subscriber and is
// the same on every retry, so receivers can deduplicate with it.
//
// # Delivery
//
// A background worker, started by New and stopped by Server.Close, sends the events. Each
// subscriber receives its events one at a time and in order (a failing event holds back the
// later ones of that subscriber), and at most Options.DeliveryConcurrency requests are in
// flight overall. A 2xx reply is a success; any other status (redirects are not followed) or
// a network error or timeout (Options.DeliveryTimeout) is retried after an exponential
// backoff with jitter: the wait after the n-th failed attempt is drawn from [d/2, d] with
// d = min(Options.RetryMax, Options.RetryBase·2^(n-1)). After Options.MaxAttempts failed
// attempts the event is dropped (reason "max attempts"). Deleting a subscriber drops its
// queued events (reason "subscriber deleted"; an attempt already in flight completes, and is
// dropped rather than retried if it fails). At most Options.QueueLimit events wait for
// delivery; beyond that the oldest event not in flight is dropped (reason "queue full").
// Retry timing follows Options.Clock.
//
// Server.Deliveries lists every event with its state, and Server.WaitDelivered waits for a
// number of successful deliveries. Events raised after Close are recorded but stay pending.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
)

// Delivery defaults, used when Options leaves the field zero.
const (
	DefaultRetryBase           = time.Second
	DefaultRetryMax            = time.Minute
	DefaultMaxAttempts         = 20
	DefaultDeliveryTimeout     = 10 * time.Second
	DefaultDeliveryConcurrency = 4
	DefaultQueueLimit          = 100000
)

// keepFinished is how many delivered or dropped events Deliveries keeps (the newest ones).
const keepFinished = 100000

// DeliveryStatus is the state of an event delivery.
type DeliveryStatus string

// Delivery states.
const (
	DeliveryPending   DeliveryStatus = "pending"   // queued, in flight or waiting for a retry
	DeliveryDelivered DeliveryStatus = "delivered" // a 2xx reply was received
	DeliveryDropped   DeliveryStatus = "dropped"   // given up; see DropReason
)

// Reasons for dropping an event (Delivery.DropReason).
const (
	DropMaxAttempts       = "max attempts"
	DropSubscriberDeleted = "subscriber deleted"
	DropQueueFull         = "queue full"
)

// Delivery is the record of one event sent (or to be sent) to one subscriber.
type Delivery struct {
	EventID      string
	SubscriberID string
	Event        string // e.g. object.create
	ObjectID     string
	CallbackURL  string
	Payload      []byte // the JSON body sent
	Attempts     int    // attempts started so far
	Status       DeliveryStatus
	LastStatus   int    // HTTP status of the last completed attempt; 0 if none or a network error
	LastError    string // error of the last failed attempt; empty after a success
	DropReason   string // DropMaxAttempts, DropSubscriberDeleted or DropQueueFull when dropped
	EnqueuedAt   time.Time
	FinishedAt   time.Time // when delivered or dropped
}

// ErrClosed is returned by WaitDelivered when the Server is closed before enough events were
// delivered.
var ErrClosed = errors.New("sandbox: server closed")

type deliveryConfig struct {
	clock               clock.Clock
	retryBase, retryMax time.Duration
	maxAttempts         int
	timeout             time.Duration
	concurrency         int
	queueLimit          int
}

func deliveryConfigOf(opts Options) deliveryConfig {
	c := deliveryConfig{
		clock:     clock.OrReal(opts.Clock),
		retryBase: opts.RetryBase, retryMax: opts.RetryMax, maxAttempts: opts.MaxAttempts,
		timeout: opts.DeliveryTimeout, concurrency: opts.DeliveryConcurrency, queueLimit: opts.QueueLimit,
	}
	if c.retryBase <= 0 {
		c.retryBase = DefaultRetryBase
	}
	if c.retryMax <= 0 {
		c.retryMax = DefaultRetryMax
	}
	c.retryMax = max(c.retryMax, c.retryBase)
	if c.maxAttempts <= 0 {
		c.maxAttempts = DefaultMaxAttempts
	}
	if c.timeout <= 0 {
		c.timeout = DefaultDeliveryTimeout
	}
	if c.concurrency <= 0 {
		c.concurrency = DefaultDeliveryConcurrency
	}
	if c.queueLimit <= 0 {
		c.queueLimit = DefaultQueueLimit
	}
	return c
}

// pendingDelivery is an event with its delivery state.
type pendingDelivery struct {
	rec  Delivery
	seq  uint64
	next time.Time // earliest time of the next attempt
}

// deliveryQueue holds the events of one subscriber not yet delivered or dropped, oldest first.
type deliveryQueue struct {
	subID   string
	events  []*pendingDelivery
	busy    bool // events[0] is in flight
	deleted bool // the subscriber was deleted while an attempt was in flight
}

// deliverer sends events in the background. Its mutex is taken after Server.mu, never before.
type deliverer struct {
	cfg       deliveryConfig
	client    *http.Client
	transport *http.Transport
	ctx       context.Context
	cancel    context.CancelFunc
	stop      chan struct{}
	wake      chan struct{} // buffered 1: something to dispatch
	done      chan struct{} // closed when Close has stopped every goroutine
	once      sync.Once
	wg        sync.WaitGroup

	mu           sync.Mutex
	closed       bool
	seq          uint64
	queues       map[string]*deliveryQueue // by subscriber id
	order        []string                  // subscriber ids of queues, for round-robin dispatch
	rr           int
	inFlight     int
	pending      int
	delivered    int
	finished     int
	keepFinished int
	records      []*pendingDelivery
	changed      chan struct{} // closed and replaced on every change
}

func newDeliverer(cfg deliveryConfig) *deliverer {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = cfg.concurrency
	ctx, cancel := context.WithCancel(context.Background())
	d := &deliverer{
		cfg:       cfg,
		transport: transport,
		client: &http.Client{
			Transport:     transport,
			Timeout:       cfg.timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		ctx:          ctx,
		cancel:       cancel,
		stop:         make(chan struct{}),
		wake:         make(chan struct{}, 1),
		done:         make(chan struct{}),
		queues:       map[string]*deliveryQueue{},
		keepFinished: keepFinished,
		changed:      make(chan struct{}),
	}
	d.wg.Add(1)
	go d.loop()
	return d
}

// Close stops event delivery: it cancels the attempts in flight and waits for the background
// worker to exit. Undelivered events stay pending. Close is idempotent and safe for
// concurrent use; it does not stop serving HTTP requests.
func (s *Server) Close() {
	s.deliveries.close()
}

// Deliveries returns the records of the events raised so far, in the order they were raised
// (the newest 100000 delivered or dropped ones, and every pending one).
func (s *Server) Deliveries() []Delivery {
	d := s.deliveries
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Delivery, 0, len(d.records))
	for _, p := range d.records {
		rec := p.rec
		rec.Payload = slices.Clone(rec.Payload)
		out = append(out, rec)
	}
	return out
}

// WaitDelivered waits until at least n events have been delivered since New. It returns
// ctx's error (wrapped) when ctx ends first, and ErrClosed when the Server is closed first.
func (s *Server) WaitDelivered(ctx context.Context, n int) error {
	d := s.deliveries
	for {
		d.mu.Lock()
		count, changed, closed := d.delivered, d.changed, d.closed
		d.mu.Unlock()
		if count >= n {
			return nil
		}
		if closed {
			return fmt.Errorf("%w: %d of %d events delivered", ErrClosed, count, n)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d delivered events, %d so far: %w", n, count, ctx.Err())
		case <-changed:
		}
	}
}

func (d *deliverer) close() {
	d.once.Do(func() {
		d.mu.Lock()
		d.closed = true
		d.notify()
		d.mu.Unlock()
		d.cancel()
		close(d.stop)
		d.wg.Wait()
		d.transport.CloseIdleConnections()
		close(d.done)
	})
	<-d.done
}

// notify wakes the WaitDelivered callers; d.mu is held.
func (d *deliverer) notify() {
	close(d.changed)
	d.changed = make(chan struct{})
}

func (d *deliverer) wakeup() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// enqueue records an event for a subscriber and queues it; d.mu is not held.
func (d *deliverer) enqueue(rec Delivery) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seq++
	rec.Status = DeliveryPending
	rec.EnqueuedAt = d.cfg.clock.Now()
	p := &pendingDelivery{rec: rec, seq: d.seq}
	d.records = append(d.records, p)
	if d.pending >= d.cfg.queueLimit && !d.dropOldest() {
		d.pending++ // finish counts it out again
		d.finish(p, DeliveryDropped, DropQueueFull)
		d.notify()
		return
	}
	q := d.queues[rec.SubscriberID]
	if q == nil {
		q = &deliveryQueue{subID: rec.SubscriberID}
		d.queues[q.subID] = q
		d.order = append(d.order, q.subID)
	}
	q.events = append(q.events, p)
	d.pending++
	d.notify()
	d.wakeup()
}

// dropOldest drops the oldest queued event that is not in flight; d.mu is held.
func (d *deliverer) dropOldest() bool {
	var victim *deliveryQueue
	vi := 0
	for _, q := range d.queues {
		i := 0
		if q.busy {
			i = 1
		}
		if i < len(q.events) && (victim == nil || q.events[i].seq < victim.events[vi].seq) {
			victim, vi = q, i
		}
	}
	if victim == nil {
		return false
	}
	p := victim.events[vi]
	victim.events = slices.Delete(victim.events, vi, vi+1)
	d.finish(p, DeliveryDropped, DropQueueFull)
	d.cleanup(victim)
	return true
}

// dropSubscriber drops the queued events of a deleted subscriber; d.mu is not held.
func (d *deliverer) dropSubscriber(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	q := d.queues[id]
	if q == nil {
		return
	}
	keep := 0
	if q.busy {
		keep = 1
		q.deleted = true
	}
	for _, p := range q.events[keep:] {
		d.finish(p, DeliveryDropped, DropSubscriberDeleted)
	}
	q.events = q.events[:keep]
	d.cleanup(q)
	d.notify()
}

// finish marks an event delivered or dropped; the caller removes it from its queue. d.mu is
// held.
func (d *deliverer) finish(p *pendingDelivery, status DeliveryStatus, reason string) {
	p.rec.Status = status
	p.rec.DropReason = reason
	p.rec.FinishedAt = d.cfg.clock.Now()
	d.pending--
	if status == DeliveryDelivered {
		d.delivered++
	}
	d.finished++
	if d.finished > 2*d.keepFinished {
		d.compact()
	}
}

// compact forgets the oldest finished records, keeping d.keepFinished of them; d.mu is held.
func (d *deliverer) compact() {
	seen, cut := 0, 0
	for i := len(d.records) - 1; i >= 0; i-- {
		if d.records[i].rec.Status != DeliveryPending {
			seen++
			if seen == d.keepFinished {
				cut = i
				break
			}
		}
	}
	out := make([]*pendingDelivery, 0, len(d.records)-(d.finished-d.keepFinished))
	for i, p := range d.records {
		if i >= cut || p.rec.Status == DeliveryPending {
			out = append(out, p)
		}
	}
	d.records = out
	d.finished = d.keepFinished
}

// cleanup forgets an idle, empty queue; d.mu is held.
func (d *deliverer) cleanup(q *deliveryQueue) {
	if q.busy || len(q.events) > 0 {
		return
	}
	delete(d.queues, q.subID)
	if i := slices.Index(d.order, q.subID); i >= 0 {
		d.order = slices.Delete(d.order, i, i+1)
		if d.rr > i {
			d.rr--
		}
	}
	if d.rr >= len(d.order) {
		d.rr = 0
	}
}

func (d *deliverer) loop() {
	defer d.wg.Done()
	timer := d.cfg.clock.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		if wait := d.dispatch(); wait >= 0 {
			timer.Reset(wait)
		}
		select {
		case <-d.stop:
			return
		case <-d.wake:
		case <-timer.C():
		}
		timer.Stop()
	}
}

// dispatch starts the attempts that are due, round-robin over the subscribers, and returns
// how long to wait for the next one (-1: until woken).
func (d *deliverer) dispatch() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return -1
	}
	now := d.cfg.clock.Now()
	n, start := len(d.order), d.rr
	for i := 0; i < n && d.inFlight < d.cfg.concurrency; i++ {
		q := d.queues[d.order[(start+i)%n]]
		if q.busy || len(q.events) == 0 || q.events[0].next.After(now) {
			continue
		}
		d.rr = (start + i + 1) % n
		q.busy = true
		d.inFlight++
		p := q.events[0]
		p.rec.Attempts++
		d.wg.Add(1)
		go d.attempt(q, p)
	}
	if d.inFlight >= d.cfg.concurrency {
		return -1 // a completing attempt wakes the loop
	}
	wait := time.Duration(-1)
	for _, q := range d.queues {
		if q.busy || len(q.events) == 0 {
			continue
		}
		if w := max(q.events[0].next.Sub(now), 0); wait < 0 || w < wait {
			wait = w
		}
	}
	return wait
}

// attempt sends the head event of a queue once and records the outcome.
func (d *deliverer) attempt(q *deliveryQueue, p *pendingDelivery) {
	defer d.wg.Done()
	status, err := d.post(p)

	d.mu.Lock()
	defer d.mu.Unlock()
	q.busy = false
	d.inFlight--
	p.rec.LastStatus = status
	switch {
	case err == nil:
		p.rec.LastError = ""
		q.events = q.events[1:]
		d.finish(p, DeliveryDelivered, "")
	case d.ctx.Err() != nil:
		p.rec.LastError = "delivery stopped: the sandbox was closed"
	case q.deleted:
		p.rec.LastError = err.Error()
		q.events = q.events[1:]
		d.finish(p, DeliveryDropped, DropSubscriberDeleted)
	case p.rec.Attempts >= d.cfg.maxAttempts:
		p.rec.LastError = err.Error()
		q.events = q.events[1:]
		d.finish(p, DeliveryDropped, DropMaxAttempts)
	default:
		p.rec.LastError = err.Error()
		p.next = d.cfg.clock.Now().Add(d.backoff(p.rec.Attempts))
	}
	d.cleanup(q)
	d.notify()
	d.wakeup()
}

// backoff is the wait after the n-th failed attempt: a random duration in [b/2, b] with
// b = min(retryMax, retryBase·2^(n-1)).
func (d *deliverer) backoff(n int) time.Duration {
	b := d.cfg.retryBase
	for i := 1; i < n && b < d.cfg.retryMax; i++ {
		b *= 2
	}
	b = min(b, d.cfg.retryMax)
	half := b / 2
	return half + rand.N(b-half+1)
}

// post sends one attempt; it returns the HTTP status (0 on a network error) and an error
// unless the reply was 2xx.
func (d *deliverer) post(p *pendingDelivery) (int, error) {
	req, err := http.NewRequestWithContext(d.ctx, http.MethodPost, p.rec.CallbackURL, bytes.NewReader(p.rec.Payload))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-WS-Event-Id", p.rec.EventID)
	req.Header.Set("User-Agent", "WorkSpan-Sandbox-Webhook/1.0")
	res, err := d.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	_ = res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return res.StatusCode, fmt.Errorf("HTTP %s", res.Status)
	}
	return res.StatusCode, nil
}

// Raising events (the store is locked by the caller).

// wants reports whether a subscriber takes an object event, before its filters.
func (sub *Subscriber) wants(event, integrationID, objectID string) bool {
	named := slices.Contains(sub.Events, event) ||
		(strings.HasPrefix(event, "object.") && slices.Contains(sub.Events, "object.all"))
	if !named || sub.IntegrationID != integrationID {
		return false
	}
	return len(sub.ObjectIDs) == 0 || slices.Contains(sub.ObjectIDs, objectID)
}

// integrationOfType returns the id of the first integration of a type ("" if none).
func (s *Server) integrationOfType(typ string) string {
	for _, in := range s.integrations {
		if in.Type == typ {
			return in.ID
		}
	}
	return ""
}

// externalIDIntegration is the integration an external id field belongs to.
func (s *Server) externalIDIntegration(field string) string {
	if strings.HasPrefix(field, "partner_center.") {
		return s.integrationOfType("PARTNER_CENTER")
	}
	return s.integrationOfType("CRM")
}

// changeKey is the state of an object for change detection (everything but modified_at).
// It is "" when nobody subscribes, as no event will be raised.
func (s *Server) changeKey(o *object) string {
	if len(s.subOrder) == 0 {
		return ""
	}
	doc := s.objectDoc(o)
	delete(doc, "modified_at")
	return string(marshal(doc))
}

func orNull(v string) any {
	if v == "" {
		return nil
	}
	return v
}

// eventFields are the object fields of an event payload.
func (s *Server) eventFields(o *object, previousStage string) map[string]any {
	f := map[string]any{
		"name":                              o.name,
		"country":                           orNull(o.country),
		"partner_center_integration_status": orNull(o.integrationStatus),
		"created_at":                        formatTime(o.createdAt),
		"modified_at":                       formatTime(o.modifiedAt),
	}
	if o.kind == kindAccount {
		f["industry"] = orNull(o.industry)
		f["website"] = orNull(o.website)
		f["external_account_id"] = orNull(o.externalIDs[fieldExternalAccountID])
		return f
	}
	f["stage"] = o.stage
	if previousStage != "" {
		f["previous_stage"] = previousStage
	}
	if o.amount != nil {
		f["amount"] = *o.amount
	} else {
		f["amount"] = nil
	}
	f["currency"] = orNull(o.currency)
	f["close_date"] = orNull(o.closeDate)
	f["partner"] = orNull(o.partner)
	f["account_id"] = orNull(o.accountID)
	f["account_name"] = nil
	if a := s.objects[o.accountID]; a != nil {
		f["account_name"] = a.name
	} else if name := o.custom["account_name"]; name != "" {
		f["account_name"] = name
	}
	f["crm_opportunity_id"] = orNull(o.externalIDs[fieldCRMOpportunityID])
	f["partner_center_referral_id"] = orNull(o.externalIDs[fieldReferralID])
	return f
}

// filterLookup resolves filter fields against an object and its event fields.
func filterLookup(o *object, fields map[string]any) func(string) string {
	values := map[string]string{}
	for k, v := range o.custom {
		values[strings.ToLower(k)] = v
	}
	for k, v := range o.externalIDs {
		values[strings.ToLower(k)] = v
	}
	values[fieldIntegrationStatus] = o.integrationStatus
	for k, v := range fields {
		switch x := v.(type) {
		case string:
			values[k] = x
		case float64:
			values[k] = strconv.FormatFloat(x, 'f', -1, 64)
		case nil:
			values[k] = ""
		default:
			values[k] = fmt.Sprint(x)
		}
	}
	return func(field string) string {
		if v, found := values[field]; found {
			return v
		}
		if i := strings.LastIndexByte(field, '.'); i >= 0 {
			return values[field[i+1:]]
		}
		return ""
	}
}

// emit raises object events for a change to o and queues them for the matching subscribers.
// previousStage is the stage before the change when it changed, else "".
func (s *Server) emit(events []string, o *object, integrationID, previousStage string, at time.Time) {
	if len(s.subOrder) == 0 {
		return
	}
	fields := s.eventFields(o, previousStage)
	var lookup func(string) string
	for _, event := range events {
		for _, id := range s.subOrder {
			sub := s.subscribers[id]
			if !sub.wants(event, integrationID, o.id) {
				continue
			}
			if sub.filter != nil {
				if lookup == nil {
					lookup = filterLookup(o, fields)
				}
				if !sub.filter.eval(lookup) {
					continue
				}
			}
			eventID := "evt_" + newHex(s.eventRng, 24)
			payload := maps.Clone(fields)
			payload["event"] = event
			payload["event_id"] = eventID
			payload["subscriber_id"] = sub.ID
			payload["integration_id"] = integrationID
			payload["object_id"] = o.id
			payload["object_type"] = o.kind
			payload["occurred_at"] = formatTime(at)
			s.deliveries.enqueue(Delivery{
				EventID: eventID, SubscriberID: sub.ID, Event: event, ObjectID: o.id,
				CallbackURL: sub.CallbackURL, Payload: marshal(payload),
			})
		}
	}
}

// emitChange raises object.update, and object.stage_change when the stage changed, for an
// existing object whose change key was before; nothing when it did not change.
func (s *Server) emitChange(o *object, before, previousStage, integrationID string, at time.Time) {
	if len(s.subOrder) == 0 || s.changeKey(o) == before {
		return
	}
	events := []string{"object.update"}
	if previousStage == o.stage {
		previousStage = ""
	}
	if previousStage != "" {
		events = append(events, "object.stage_change")
	}
	s.emit(events, o, integrationID, previousStage, at)
}
