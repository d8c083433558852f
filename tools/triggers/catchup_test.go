package triggers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	pc "github.com/cosell-mcp/cosell-mcp/connectors/partnercenter"
	pcsandbox "github.com/cosell-mcp/cosell-mcp/connectors/partnercenter/sandbox"
	pd "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
	pdsandbox "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive/sandbox"
	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/internal/httpx"
	"github.com/cosell-mcp/cosell-mcp/internal/store"
	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
	"github.com/cosell-mcp/cosell-mcp/internal/triggers"
	pctools "github.com/cosell-mcp/cosell-mcp/tools/partnercenter"
	pdtools "github.com/cosell-mcp/cosell-mcp/tools/pipedrive"
	trtools "github.com/cosell-mcp/cosell-mcp/tools/triggers"
)

// catchupStart is the fake time the catch-up tests start at.
var catchupStart = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

// tap sits in front of a sandbox: it notes when each request arrives
// there, on the upstream's clock, and can make requests fail.
type tap struct {
	next  http.Handler
	clock clock.Clock

	mu     sync.Mutex
	times  []time.Time
	paths  []string
	failIn int // < 0: never fail; otherwise this many more requests pass, then every one gets a 500
}

func newTap(next http.Handler, clk clock.Clock) *tap {
	return &tap{next: next, clock: clk, failIn: -1}
}

func (u *tap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.times = append(u.times, u.clock.Now())
	u.paths = append(u.paths, r.URL.Path)
	fail := u.failIn == 0
	if u.failIn > 0 {
		u.failIn--
	}
	u.mu.Unlock()
	if fail {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, `{"success":false,"error":"Internal server error","error_info":"Please check developers.pipedrive.com for more information about Pipedrive API.","data":null,"additional_data":null}`)
		return
	}
	u.next.ServeHTTP(w, r)
}

// failAfter lets n more requests through and fails every one after them;
// a negative n stops failing.
func (u *tap) failAfter(n int) {
	u.mu.Lock()
	u.failIn = n
	u.mu.Unlock()
}

func (u *tap) arrivals() []time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.times)
}

func (u *tap) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.times)
}

// shapingPaths are the Pipedrive look-ups that shape events (reference
// data, organization and person names), as opposed to the listing a
// poller pages through.
var shapingPaths = []string{"/api/v2/pipelines", "/api/v2/stages", "/api/v2/dealFields", "/v1/users", "/api/v1/users",
	"/api/v2/organizations", "/api/v2/persons"}

// shapingCalls bounds the look-ups of one poll's shaping: four
// reference-data lists (once per cache period) and four name batches.
const shapingCalls = 8

// since counts the requests after the first n: those of the poller's
// listing and those of its shaping.
func (u *tap) since(n int) (listing, shaping int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, p := range u.paths[n:] {
		if slices.Contains(shapingPaths, p) {
			shaping++
		} else {
			listing++
		}
	}
	return listing, shaping
}

// pdHarness is a Pipedrive sandbox behind a throttle budget, a real store
// and a trigger manager whose polls the test makes itself (its own clock
// never moves, so its pollers never poll on their own).
type pdHarness struct {
	sb     *pdsandbox.Server
	pd     *pd.Client
	up     *tap
	store  *store.Store
	kinds  []triggers.Kind
	m      *triggers.Manager
	budget throttle.Config
}

// newPDHarness wires the harness; the budget allows limit requests per
// window on the upstream's fake clock, which moves on by itself whenever
// the budget makes someone wait, so waiting for budget takes no real time.
func newPDHarness(t *testing.T, limit int, window time.Duration, tune trtools.Clients) *pdHarness {
	t.Helper()
	upClock := clock.NewFake(catchupStart)
	sb := pdsandbox.New(pdsandbox.Options{Burst: 1 << 20, Clock: upClock})
	up := newTap(sb, upClock)
	ts := httptest.NewServer(up)
	t.Cleanup(ts.Close)
	cfg := throttle.Config{Limit: limit, Window: window, Clock: upClock}
	budget := throttle.New("pipedrive", cfg)
	client := pd.New(pdsandbox.DefaultToken, pd.WithBaseURL(ts.URL),
		pd.WithHTTPClient(&http.Client{Transport: httpx.Chain(budget, http.DefaultTransport)}))
	t.Cleanup(upClock.AutoAdvance(context.Background()))

	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	managerClock := clock.NewFake(catchupStart)
	tune.Pipedrive, tune.Clock = client, managerClock
	h := &pdHarness{sb: sb, pd: client, up: up, store: st, kinds: trtools.Kinds(tune), budget: cfg}
	h.m = triggers.NewManager(st, h.kinds, triggers.Options{Clock: managerClock})
	t.Cleanup(func() { h.m.Close() })
	return h
}

// restart replaces the manager by a new one over the same store, as a
// server restart would.
func (h *pdHarness) restart() {
	h.m.Close()
	h.m = triggers.NewManager(h.store, h.kinds, triggers.Options{Clock: clock.NewFake(catchupStart)})
}

// start starts the trigger (its first poll marks "now") and returns its key.
func (h *pdHarness) start(t *testing.T, uri string) string {
	t.Helper()
	key, err := h.m.Start(context.Background(), uri)
	require.NoError(t, err)
	return key
}

// pollOnce makes one poll of the trigger as its poller does, and returns how
// many requests of its listing reached the upstream during it (those that
// shape its events are checked against their own bound).
func pollOnce(t *testing.T, m *triggers.Manager, up *tap, uri string) (requests int, stored bool) {
	t.Helper()
	k, params, _, err := m.Resolve(uri)
	require.NoError(t, err)
	before := up.count()
	stored = m.PollOnce(throttle.WithPriority(context.Background(), throttle.Background), k, uri, params)
	listing, shaping := up.since(before)
	require.LessOrEqual(t, shaping, shapingCalls, "shaping one poll's events keeps to its bound")
	return listing, stored
}

func (h *pdHarness) poll(t *testing.T, uri string) int {
	t.Helper()
	n, stored := pollOnce(t, h.m, h.up, uri)
	require.True(t, stored, "the poll stored its events and state")
	return n
}

// idState is the stored state of a Pipedrive poller.
type idState struct {
	LastID  int64             `json:"last_id"`
	Backlog []json.RawMessage `json:"backlog"`
}

func (h *pdHarness) state(t *testing.T, uri string) idState {
	t.Helper()
	tr, ok, err := h.store.Trigger(context.Background(), uri)
	require.NoError(t, err)
	require.True(t, ok)
	var st idState
	require.NoError(t, json.Unmarshal(tr.State, &st), string(tr.State))
	return st
}

// eventIDs returns the record ids of the trigger's events in log order,
// checking that each event's key names its payload's id.
func eventIDs(t *testing.T, st *store.Store, uri, prefix string) []int64 {
	t.Helper()
	evs, err := st.EventsAfter(context.Background(), uri, 0, 1<<20)
	require.NoError(t, err)
	ids := make([]int64, len(evs))
	for i, e := range evs {
		raw, ok := strings.CutPrefix(e.Key, prefix+":")
		require.True(t, ok, e.Key)
		id, err := strconv.ParseInt(raw, 10, 64)
		require.NoError(t, err, e.Key)
		var rec struct {
			ID int64 `json:"id"`
		}
		require.NoError(t, json.Unmarshal(e.Payload, &rec))
		require.Equal(t, id, rec.ID, "the key names the payload's record")
		ids[i] = id
	}
	return ids
}

// assertWithinBudget checks, where the upstream counts, that no rolling
// window of the budget saw more than its limit of requests.
func (h *pdHarness) assertWithinBudget(t *testing.T) {
	t.Helper()
	times := h.up.arrivals()
	require.Greater(t, len(times), h.budget.Limit, "the budget was a constraint")
	for i := h.budget.Limit; i < len(times); i++ {
		require.GreaterOrEqual(t, times[i].Sub(times[i-h.budget.Limit]), h.budget.Window,
			"requests %d..%d arrived within one window", i-h.budget.Limit, i)
	}
}

// catchUp polls until the trigger has no backlog left, checking after each
// poll that it kept to its page bound and that the event log is a prefix of
// want (ascending ids): so far nothing skipped, nothing twice, oldest first.
// before runs ahead of each poll. It returns the polls and requests made.
func (h *pdHarness) catchUp(t *testing.T, uri, prefix string, want *[]int64, bound int, before func(poll int)) (polls, requests int) {
	t.Helper()
	for polls = 1; polls <= 100; polls++ {
		if before != nil {
			before(polls)
		}
		n := h.poll(t, uri)
		require.LessOrEqual(t, n, bound, "poll %d kept to its page bound", polls)
		requests += n
		got := eventIDs(t, h.store, uri, prefix)
		require.LessOrEqual(t, len(got), len(*want))
		require.Equal(t, (*want)[:len(got)], got, "after poll %d: the log is the oldest records, in order, each once", polls)
		if st := h.state(t, uri); len(st.Backlog) == 0 && len(got) == len(*want) {
			assert.Equal(t, (*want)[len(*want)-1], st.LastID, "the mark is the newest record emitted")
			return polls, requests
		}
	}
	t.Fatal("the backlog was never finished")
	return 0, 0
}

// The burst at scale: 10,000 deals added between two polls are
// exactly 10,000 events, oldest first, none twice, read through the real
// client and the budget, which the upstream sees respected in every
// rolling window.
func TestTenThousandDealsBetweenTwoPolls(t *testing.T) {
	const limit, window = 6, time.Minute
	h := newPDHarness(t, limit, window, trtools.Clients{})
	uri := h.start(t, "pipedrive://triggers/new-deals")
	armed := h.up.count()
	added := h.sb.AddDealsForTest(10000, "Burst")

	requests := h.poll(t, uri)
	pages := (len(added) + trtools.PipedrivePageSize - 1) / trtools.PipedrivePageSize
	assert.LessOrEqual(t, requests, trtools.DefaultPollPages, "one poll keeps to its page bound")
	assert.LessOrEqual(t, requests, pages+1, "one pass over the burst, pages of %d", trtools.PipedrivePageSize)
	assert.Equal(t, added, eventIDs(t, h.store, uri, "deal"), "every deal once, oldest first")
	assert.Empty(t, h.state(t, uri).Backlog)

	evs, err := h.store.EventsAfter(context.Background(), uri, 0, 1)
	require.NoError(t, err)
	var first pdtools.Deal
	require.NoError(t, json.Unmarshal(evs[0].Payload, &first))
	assert.Equal(t, "Burst #1", first.Title)
	assert.NotEmpty(t, first.StageName, "the event is shaped as the tools' deals: names resolved")
	assert.NotEmpty(t, first.PipelineName)
	var raw pd.Deal
	require.NoError(t, json.Unmarshal(evs[0].Raw, &raw), "the upstream record is kept beside it")
	assert.Equal(t, first.ID, raw.ID)
	assert.Equal(t, first.StageID, raw.StageID)

	idle := h.poll(t, uri)
	assert.Equal(t, 1, idle, "a poll with nothing new costs one request")
	assert.Len(t, eventIDs(t, h.store, uri, "deal"), len(added), "and stores nothing")
	h.assertWithinBudget(t)
	t.Logf("requests at the sandbox: arming %d, catching up with %d deals %d (pages of %d), idle poll %d",
		armed, len(added), requests, trtools.PipedrivePageSize, idle)
}

// A backlog larger than one poll's page bound is finished by the following
// polls: nothing skipped, nothing twice, oldest first, the mark moving only
// past what was emitted. Deals added meanwhile come after it; a poll cut
// short by an upstream error keeps what it learnt; a restart resumes from
// the stored state.
func TestBacklogLargerThanOnePollIsFinishedByTheNextPolls(t *testing.T) {
	const bound, size = 3, 10
	h := newPDHarness(t, 100, time.Minute, trtools.Clients{PollPages: bound, PageSize: size})
	uri := h.start(t, "pipedrive://triggers/new-deals")
	mark := h.state(t, uri).LastID
	want := h.sb.AddDealsForTest(95, "Backlog")

	polls, requests := h.catchUp(t, uri, "deal", &want, bound, func(poll int) {
		switch poll {
		case 2:
			// The upstream fails in the middle of the poll.
			h.up.failAfter(1)
		case 3:
			h.up.failAfter(-1)
			st := h.state(t, uri)
			assert.Equal(t, mark, st.LastID, "nothing emitted yet: the mark has not moved")
			assert.NotEmpty(t, st.Backlog, "the way down is remembered")
			// More deals arrive while the backlog is worked off.
			want = append(want, h.sb.AddDealsForTest(7, "Meanwhile")...)
		case 5:
			h.restart()
		}
	})
	assert.Len(t, want, 102)
	pages := (len(want) + size - 1) / size
	assert.LessOrEqual(t, requests, 2*pages+polls, "a page is read at most twice, plus one look at the top per poll")
	assert.Equal(t, 1, h.poll(t, uri), "then a poll costs one request")
	assert.Len(t, eventIDs(t, h.store, uri, "deal"), len(want))
	t.Logf("%d deals (+7 meanwhile) in pages of %d, %d pages per poll: %d polls, %d requests", 95, size, bound, polls, requests)
}

// A poll whose first request fails stores nothing and moves no mark.
func TestFailedPollMovesNothing(t *testing.T) {
	h := newPDHarness(t, 100, time.Minute, trtools.Clients{PollPages: 2, PageSize: 5})
	uri := h.start(t, "pipedrive://triggers/new-deals")
	before := h.state(t, uri)
	want := h.sb.AddDealsForTest(12, "Fail")
	h.up.failAfter(0)
	n, stored := pollOnce(t, h.m, h.up, uri)
	assert.Equal(t, 1, n)
	assert.False(t, stored, "the poll reports its failure")
	assert.Equal(t, before, h.state(t, uri))
	h.up.failAfter(-1)
	h.catchUp(t, uri, "deal", &want, 2, nil)
}

// Activities share the deals' poller: a burst larger than one poll is
// emitted exactly once, oldest first.
func TestActivityBacklogIsCaughtUp(t *testing.T) {
	const bound = 2
	h := newPDHarness(t, 100, time.Minute, trtools.Clients{PollPages: bound, PageSize: 7})
	uri := h.start(t, "pipedrive://triggers/new-activities")
	var want []int64
	for i := range 40 {
		a, err := h.pd.AddActivity(context.Background(), pd.ActivityInput{Subject: fmt.Sprintf("Follow up %d", i+1), Type: "call", DealID: 1})
		require.NoError(t, err)
		want = append(want, a.ID)
	}
	polls, _ := h.catchUp(t, uri, "activity", &want, bound, nil)
	assert.Greater(t, polls, 1, "the burst took more than one poll")
}

// 250 referrals sharing one updatedDateTime span page and poll boundaries:
// each is emitted exactly once, in keyset order; one updated again later
// is one new event.
func TestReferralsSharingATimestampAcrossPages(t *testing.T) {
	upClock := clock.NewFake(catchupStart)
	sb := pcsandbox.New(pcsandbox.Options{Clock: upClock})
	up := newTap(sb, upClock)
	ts := httptest.NewServer(up)
	t.Cleanup(ts.Close)
	client := pc.New(pc.StaticToken(pcsandbox.DefaultToken), pc.WithBaseURL(sb.APIBase(ts.URL)))
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	const bound = 2 // pages of 100: 250 referrals take two polls
	m := triggers.NewManager(st, trtools.Kinds(trtools.Clients{PartnerCenter: client, Clock: upClock, PollPages: bound}),
		triggers.Options{Clock: clock.NewFake(catchupStart)})
	t.Cleanup(m.Close)
	ctx := context.Background()
	uri, err := m.Start(ctx, "partnercenter://triggers/referrals")
	require.NoError(t, err)

	upClock.Advance(time.Second)
	yes := true
	var want []string
	for i := range 250 {
		r, err := client.CreateReferral(ctx, pc.Referral{Name: fmt.Sprintf("Shared instant %d", i+1), Type: pc.TypeIndependent,
			CustomerProfile: &pc.CustomerProfile{Name: fmt.Sprintf("Customer %d", i+1)}, Consent: &pc.Consent{ConsentToContact: &yes},
			Details: &pc.Details{Notes: "created in one instant"}}, "")
		require.NoError(t, err)
		require.Equal(t, upClock.Now().UTC(), mustTime(t, r.UpdatedDateTime), "every referral has the same updatedDateTime")
		want = append(want, "referral:"+r.ID+"@"+r.ETag)
	}
	// The keyset order: updatedDateTime (all equal), then id.
	slices.SortFunc(want, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })

	keys := func() []string {
		evs, err := st.EventsAfter(ctx, uri, 0, 1000)
		require.NoError(t, err)
		var out []string
		for _, e := range evs {
			out = append(out, e.Key)
		}
		return out
	}
	n, stored := pollOnce(t, m, up, uri)
	require.True(t, stored)
	assert.Equal(t, bound, n, "the first poll stops at its page bound")
	assert.Equal(t, want[:200], keys(), "two pages, in order")
	n, stored = pollOnce(t, m, up, uri)
	require.True(t, stored)
	assert.Equal(t, 1, n, "the next poll resumes from the mark")
	assert.Equal(t, want, keys(), "all 250 exactly once, in order")

	// One of them is updated again later: one new event.
	upClock.Advance(time.Second)
	target, _, _ := strings.Cut(strings.TrimPrefix(want[137], "referral:"), "@")
	_, err = client.PatchReferral(ctx, target, []pc.PatchOp{{Op: "replace", Path: "/details/notes", Value: "updated later"}}, "")
	require.NoError(t, err)
	again, err := client.GetReferral(ctx, target)
	require.NoError(t, err)
	n, stored = pollOnce(t, m, up, uri)
	require.True(t, stored)
	assert.Equal(t, 1, n)
	assert.Equal(t, append(slices.Clone(want), "referral:"+target+"@"+again.ETag), keys())

	// The event's data is the referral as partnercenter_list_referrals
	// lists it; its raw is the full referral.
	latest, err := st.EventsAfter(ctx, uri, 250, 1)
	require.NoError(t, err)
	require.Len(t, latest, 1)
	var row pctools.Row
	require.NoError(t, json.Unmarshal(latest[0].Payload, &row))
	assert.Equal(t, target, row.ID)
	assert.Equal(t, again.ETag, row.ETag)
	assert.Equal(t, again.Name, row.Name)
	var full pc.Referral
	require.NoError(t, json.Unmarshal(latest[0].Raw, &full))
	assert.Equal(t, "updated later", full.Details.Notes)

	tr, _, err := st.Trigger(ctx, uri)
	require.NoError(t, err)
	var state struct{ Since, ID string }
	require.NoError(t, json.Unmarshal(tr.State, &state))
	assert.Equal(t, target, state.ID, "the mark is the last referral emitted")
	assert.Equal(t, upClock.Now().UTC(), mustTime(t, state.Since))

	n, stored = pollOnce(t, m, up, uri)
	require.True(t, stored)
	assert.Equal(t, 1, n)
	assert.Len(t, keys(), 251, "nothing twice")
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err, s)
	return tm.UTC()
}
