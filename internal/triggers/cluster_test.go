package triggers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/pgtest"
	"github.com/cosell-mcp/cosell-mcp/internal/store"
	"github.com/cosell-mcp/cosell-mcp/internal/store/pgstore"
)

// feed is an upstream that gains records over time, which every replica's
// poller reads; it counts the polls each replica makes.
type feed struct {
	mu    sync.Mutex
	ids   []int
	polls map[string]int
}

func (f *feed) add(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.ids = append(f.ids, len(f.ids)+1)
	}
}

func (f *feed) pollsBy(replica string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.polls[replica]
}

// replicaPoller is the feed as one replica polls it: state {"last": n}.
type replicaPoller struct {
	f       *feed
	replica string
}

func (p replicaPoller) Poll(_ context.Context, _ url.Values, state json.RawMessage) ([]store.NewEvent, json.RawMessage, error) {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	p.f.polls[p.replica]++
	var st struct {
		Last int `json:"last"`
	}
	if len(state) == 0 {
		st.Last = len(p.f.ids) // a new trigger starts from now
		out, _ := json.Marshal(st)
		return nil, out, nil
	}
	if err := json.Unmarshal(state, &st); err != nil {
		return nil, nil, err
	}
	var evs []store.NewEvent
	for _, id := range p.f.ids[st.Last:] {
		evs = append(evs, store.NewEvent{Key: "r:" + strconv.Itoa(id), Payload: json.RawMessage(fmt.Sprintf(`{"id":%d}`, id))})
		st.Last = id
	}
	out, _ := json.Marshal(st)
	return evs, out, nil
}

// waitFor waits for cond, checked whenever a poll may have happened; the
// deadline is a hang guard only.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx := hangGuard(t)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("never: %s", what)
		case <-tick.C:
		}
	}
}

// Three replicas share one PostgreSQL: a trigger started through one is
// polled by exactly one replica; stopping it through another stops the
// polling everywhere; when its holder dies without a word, another replica
// takes over within one lease period, and no event is lost or stored twice.
func TestOneReplicaPollsEachTrigger(t *testing.T) {
	dsn := pgtest.Start(t)
	f := &feed{polls: map[string]int{}}
	const interval, ttl = 20 * time.Millisecond, 900 * time.Millisecond
	names := []string{"a", "b", "c"}
	managers := map[string]*Manager{}
	stores := map[string]*pgstore.Store{}
	for _, name := range names {
		st, err := pgstore.Open(context.Background(), dsn, store.Options{})
		require.NoError(t, err)
		t.Cleanup(func() { _ = st.Close() })
		kinds := []Kind{{Name: "test.feed", Base: "test://triggers/feed", Poller: replicaPoller{f: f, replica: name}, Interval: interval}}
		m := NewManager(st, kinds, Options{Leases: st, ReplicaID: name, LeaseTTL: ttl})
		t.Cleanup(m.Close)
		m.StartLeases()
		managers[name], stores[name] = m, st
	}
	ctx := hangGuard(t)
	uri, err := managers["a"].Start(ctx, "test://triggers/feed")
	require.NoError(t, err)
	require.True(t, managers["a"].running(uri), "the replica that started it holds its lease and polls")

	events := func() []int {
		evs, err := stores["c"].EventsAfter(ctx, uri, 0, 100000)
		require.NoError(t, err)
		ids := make([]int, len(evs))
		for i, e := range evs {
			var rec struct{ ID int }
			require.NoError(t, json.Unmarshal(e.Payload, &rec))
			ids[i] = rec.ID
		}
		return ids
	}
	f.add(30)
	waitFor(t, "30 events stored", func() bool { return len(events()) == 30 })
	waitFor(t, "several balance rounds", func() bool { return f.pollsBy("a") > 20 })
	assert.Zero(t, f.pollsBy("b"), "one replica polls the trigger")
	assert.Zero(t, f.pollsBy("c"))

	// Stopped through b: a stops polling too.
	require.NoError(t, managers["b"].Stop(ctx, "test://triggers/feed"))
	waitFor(t, "a stops its poller", func() bool { return !managers["a"].running(uri) })
	stoppedAt := f.pollsBy("a")
	f.add(5)
	// A balance round on every replica passes without anyone polling.
	for _, name := range names {
		managers[name].balance(ctx)
	}
	assert.Equal(t, stoppedAt, f.pollsBy("a"))
	assert.Len(t, events(), 30, "nothing polled after the stop")

	// Started again through c (it catches up from the stored mark), then its
	// holder dies without giving its lease up: another replica takes over.
	_, err = managers["c"].Start(ctx, "test://triggers/feed")
	require.NoError(t, err)
	holder := ""
	waitFor(t, "some replica polls again", func() bool {
		for _, name := range names {
			if managers[name].running(uri) {
				holder = name
				return true
			}
		}
		return false
	})
	f.add(10)
	waitFor(t, "45 events stored", func() bool { return len(events()) == 45 })
	managers[holder].abandon()
	f.add(20)
	waitFor(t, "another replica takes over and catches up", func() bool { return len(events()) == 65 })
	successor := ""
	for _, name := range names {
		if name != holder && managers[name].running(uri) {
			successor = name
		}
	}
	assert.NotEmpty(t, successor)
	want := make([]int, 65)
	for i := range want {
		want[i] = i + 1
	}
	got := events()
	assert.Equal(t, want, got, "every record once, in order, across the stop, the restart and the takeover")
	assert.True(t, slices.IsSorted(got))
}

// Webhook triggers in a cluster: the callback names the balancer's URL, so
// a delivery may reach any replica; each stores it durably before its 2xx,
// and a delivery repeated to another replica is stored once.
func TestAnyReplicaTakesAWebhookDelivery(t *testing.T) {
	dsn := pgtest.Start(t)
	w := newFakeWebhook("")
	const public = "http://127.0.0.1:40999" // the balancer, as the upstream sees it
	var managers []*Manager
	for _, name := range []string{"a", "b"} {
		st, err := pgstore.Open(context.Background(), dsn, store.Options{})
		require.NoError(t, err)
		t.Cleanup(func() { _ = st.Close() })
		m := NewManager(st, hookKinds(w), Options{Leases: st, ReplicaID: name, PublicURL: public})
		t.Cleanup(m.Close)
		managers = append(managers, m)
	}
	ctx := hangGuard(t)
	key, err := managers[0].Start(ctx, hookURI)
	require.NoError(t, err)
	var callback string
	for _, cb := range w.live() {
		callback = cb
	}
	require.True(t, strings.HasPrefix(callback, public+"/webhooks/test/"), callback)
	path := strings.TrimPrefix(callback, public)

	deliver := func(m *Manager, body string) int {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("X-WS-Event-Id", "evt-1")
		m.WebhookHandler().ServeHTTP(rec, req)
		return rec.Code
	}
	assert.Equal(t, http.StatusOK, deliver(managers[1], `{"event":"object.update","id":"1"}`), "a replica that did not start it takes the delivery")
	assert.Equal(t, http.StatusOK, deliver(managers[0], `{"event":"object.update","id":"1"}`), "the repeat to another replica is acknowledged")
	evs, err := managers[0].Store().EventsAfter(ctx, key, 0, 10)
	require.NoError(t, err)
	require.Len(t, evs, 1, "and stored once")

	// A wrong secret gets the same answer as no trigger, on any replica.
	rec := httptest.NewRecorder()
	managers[1].WebhookHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path+"x", strings.NewReader(`{}`)))
	assert.Equal(t, http.StatusNotFound, rec.Code)
}
