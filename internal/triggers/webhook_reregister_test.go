package triggers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/store"
)

// fakeWebhook is an upstream of webhook subscribers that records every call.
type fakeWebhook struct {
	upstream string // its API's base URL, as WebhookUpstream tells; "" unknown

	mu         sync.Mutex
	calls      []string          // "register <url>", "unregister <id>", "exists <id>", in order
	subs       map[string]string // subscriber id → callback URL
	next       int
	failDelete int                 // the next failDelete Unregister calls fail
	onDelete   func(id string)     // called inside Unregister, before it deletes
	registered map[string]struct{} // every id ever registered
}

func newFakeWebhook(upstream string) *fakeWebhook {
	return &fakeWebhook{upstream: upstream, subs: map[string]string{}, registered: map[string]struct{}{}}
}

func (w *fakeWebhook) UpstreamURL() string { return w.upstream }

func (w *fakeWebhook) Register(_ context.Context, _ url.Values, callbackURL string) (string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.next++
	id := fmt.Sprintf("sub-%d", w.next)
	w.subs[id] = callbackURL
	w.registered[id] = struct{}{}
	w.calls = append(w.calls, "register "+callbackURL)
	return id, nil
}

func (w *fakeWebhook) Unregister(_ context.Context, id string) error {
	w.mu.Lock()
	w.calls = append(w.calls, "unregister "+id)
	hook := w.onDelete
	if w.failDelete > 0 {
		w.failDelete--
		w.mu.Unlock()
		return errors.New("upstream unavailable")
	}
	w.mu.Unlock()
	if hook != nil {
		hook(id)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.subs, id) // an unknown id counts as deleted, like a 404
	return nil
}

func (w *fakeWebhook) Exists(_ context.Context, id string) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, "exists "+id)
	_, ok := w.subs[id]
	return ok, nil
}

// takeCalls returns the calls recorded since the last takeCalls.
func (w *fakeWebhook) takeCalls() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.calls
	w.calls = nil
	return c
}

// live returns the subscribers the upstream has: id → callback URL.
func (w *fakeWebhook) live() map[string]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]string, len(w.subs))
	for id, cb := range w.subs {
		out[id] = cb
	}
	return out
}

const hookURI = "test://hook"

func hookKinds(w Webhook) []Kind {
	return []Kind{{Name: "test.hook", Base: hookURI, Webhook: w}}
}

// storedHook reads a webhook trigger's stored state.
func storedHook(t *testing.T, st *store.Store, key string) (store.Trigger, webhookState) {
	t.Helper()
	tr, ok, err := st.Trigger(context.Background(), key)
	require.NoError(t, err)
	require.True(t, ok, "trigger stored")
	var ws webhookState
	require.NoError(t, json.Unmarshal(tr.State, &ws))
	return tr, ws
}

// Finding: a restart on another listener port kept the subscriber that
// posts to the old port. Now the restore registers one with the new URL
// first, then deletes the old one, keeping the trigger's capability path.
func TestRestoreReregistersWhenTheCallbackURLChanged(t *testing.T) {
	st := openStore(t)
	w := newFakeWebhook("")
	old := NewManager(st, hookKinds(w), Options{PublicURL: "http://127.0.0.1:41001"})
	key, err := old.Start(context.Background(), hookURI)
	require.NoError(t, err)
	old.Close()
	assert.Equal(t, []string{"register " + old.publicURL + "/webhooks/test/"}, prefixes(w.takeCalls(), "/webhooks/test/"))
	_, before := storedHook(t, st, key)
	require.Equal(t, "sub-1", before.SubscriberID)
	require.Equal(t, "http://127.0.0.1:41001/webhooks/test/"+before.ID+"/"+before.Secret, before.CallbackURL)

	m := NewManager(st, hookKinds(w), Options{PublicURL: "http://127.0.0.1:41002/"})
	t.Cleanup(m.Close)
	require.NoError(t, m.Restore(hangGuard(t)))

	newURL := "http://127.0.0.1:41002/webhooks/test/" + before.ID + "/" + before.Secret
	assert.Equal(t, []string{"register " + newURL, "unregister sub-1"}, w.takeCalls(),
		"a subscriber known to post elsewhere is replaced without asking, the new one registered before the old one is deleted")
	assert.Equal(t, map[string]string{"sub-2": newURL}, w.live(), "only the new subscriber is left upstream")
	tr, after := storedHook(t, st, key)
	assert.True(t, tr.Active)
	assert.Equal(t, webhookState{ID: before.ID, Secret: before.Secret, SubscriberID: "sub-2", CallbackURL: newURL}, after,
		"same capability path, new subscriber and its URL stored, nothing stale")

	// Started again on the same URL: the subscriber is only checked.
	_, err = m.Start(context.Background(), hookURI)
	require.NoError(t, err)
	assert.Equal(t, []string{"exists sub-2"}, w.takeCalls())
}

// prefixes cuts each call after the first marker, for URLs with random parts.
func prefixes(calls []string, marker string) []string {
	out := make([]string, len(calls))
	for i, c := range calls {
		if j := strings.Index(c, marker); j >= 0 {
			c = c[:j+len(marker)]
		}
		out[i] = c
	}
	return out
}

// Restarting on the same callback URL keeps the subscriber the upstream
// still has (one call), and replaces one the upstream lost.
func TestRestoreKeepsASubscriberOnTheSameURL(t *testing.T) {
	st := openStore(t)
	w := newFakeWebhook("")
	opts := Options{PublicURL: "https://mcp.example.com"}
	first := NewManager(st, hookKinds(w), opts)
	key, err := first.Start(context.Background(), hookURI)
	require.NoError(t, err)
	first.Close()
	w.takeCalls()

	m := NewManager(st, hookKinds(w), opts)
	t.Cleanup(m.Close)
	require.NoError(t, m.Restore(hangGuard(t)))
	assert.Equal(t, []string{"exists sub-1"}, w.takeCalls())

	require.NoError(t, w.Unregister(context.Background(), "sub-1")) // the upstream lost it
	w.takeCalls()
	_, err = m.Start(context.Background(), hookURI)
	require.NoError(t, err)
	_, st2 := storedHook(t, st, key)
	assert.Equal(t, []string{"exists sub-1", "register " + st2.CallbackURL}, w.takeCalls(), "nothing to delete")
	assert.Equal(t, "sub-2", st2.SubscriberID)
	assert.Empty(t, st2.Stale)
}

// State written before the callback URL was recorded has an unknown URL:
// its subscriber is replaced once, and deleted only if the upstream has it.
func TestRestoreReplacesASubscriberOfUnknownURL(t *testing.T) {
	st := openStore(t)
	w := newFakeWebhook("")
	legacy, _ := json.Marshal(map[string]string{"id": "abcd", "secret": "s3cr3t", "subscriber_id": "sub-old"})
	w.subs["sub-old"] = "http://127.0.0.1:40000/webhooks/test/abcd/s3cr3t"
	require.NoError(t, st.UpsertTrigger(context.Background(), store.Trigger{URI: hookURI, Kind: "test.hook", Params: json.RawMessage(`{}`), State: legacy, Active: true}))

	m := NewManager(st, hookKinds(w), Options{PublicURL: "http://127.0.0.1:40001"})
	t.Cleanup(m.Close)
	require.NoError(t, m.Restore(hangGuard(t)))
	newURL := "http://127.0.0.1:40001/webhooks/test/abcd/s3cr3t"
	assert.Equal(t, []string{"exists sub-old", "register " + newURL, "unregister sub-old"}, w.takeCalls())
	assert.Equal(t, map[string]string{"sub-1": newURL}, w.live())
	_, got := storedHook(t, st, hookURI)
	assert.Equal(t, webhookState{ID: "abcd", Secret: "s3cr3t", SubscriberID: "sub-1", CallbackURL: newURL}, got)
}

// No event window is lost: while the old subscriber is being deleted the
// new one is already registered, and a delivery to the new URL is stored.
func TestADeliveryDuringTheReregistrationIsStored(t *testing.T) {
	st := openStore(t)
	w := newFakeWebhook("")
	old := NewManager(st, hookKinds(w), Options{PublicURL: "http://127.0.0.1:42001"})
	key, err := old.Start(context.Background(), hookURI)
	require.NoError(t, err)
	old.Close()

	notified := make(chan string, 10)
	m := NewManager(st, hookKinds(w), Options{PublicURL: "http://127.0.0.1:42002", Notify: func(k string) { notified <- k }})
	t.Cleanup(m.Close)
	var status int
	w.onDelete = func(id string) {
		// The upstream raises an event while we delete the old subscriber:
		// it is posted to the subscriber registered with the new URL.
		cb := w.live()["sub-2"]
		require.NotEmpty(t, cb, "the new subscriber exists before the old one is deleted")
		u, _ := url.Parse(cb)
		rec := httptest.NewRecorder()
		m.WebhookHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, u.Path, strings.NewReader(`{"event_id":"evt-1","event":"object.create"}`)))
		status = rec.Code
	}
	require.NoError(t, m.Restore(hangGuard(t)))
	assert.Equal(t, http.StatusOK, status)
	assert.Equal(t, key, <-notified)
	evs, err := st.EventsAfter(context.Background(), key, 0, 10)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	assert.Equal(t, "evt-1", evs[0].Key)
}

// A replaced subscriber that could not be deleted is kept in the state and
// deleted at the next start; Stop deletes it too.
func TestAStaleSubscriberIsDeletedLater(t *testing.T) {
	st := openStore(t)
	w := newFakeWebhook("")
	old := NewManager(st, hookKinds(w), Options{PublicURL: "http://127.0.0.1:43001"})
	key, err := old.Start(context.Background(), hookURI)
	require.NoError(t, err)
	old.Close()

	m := NewManager(st, hookKinds(w), Options{PublicURL: "http://127.0.0.1:43002"})
	t.Cleanup(m.Close)
	w.failDelete = 1
	require.NoError(t, m.Restore(hangGuard(t)), "the trigger listens on its new subscriber")
	_, got := storedHook(t, st, key)
	assert.Equal(t, "sub-2", got.SubscriberID)
	assert.Equal(t, []string{"sub-1"}, got.Stale, "the old subscriber is remembered")

	w.takeCalls()
	_, err = m.Start(context.Background(), hookURI)
	require.NoError(t, err)
	assert.Equal(t, []string{"exists sub-2", "unregister sub-1"}, w.takeCalls())
	_, got = storedHook(t, st, key)
	assert.Empty(t, got.Stale)
	assert.Len(t, w.live(), 1)

	// Stop deletes a stale subscriber along with the trigger's own.
	w.failDelete = 0
	w.mu.Lock()
	w.subs["sub-9"] = "http://127.0.0.1:1/x"
	w.mu.Unlock()
	got.Stale = []string{"sub-9"}
	state, _ := json.Marshal(got)
	require.NoError(t, st.SetTriggerState(context.Background(), key, state))
	w.takeCalls()
	require.NoError(t, m.Stop(context.Background(), hookURI))
	assert.ElementsMatch(t, []string{"unregister sub-9", "unregister sub-2"}, w.takeCalls())
	assert.Empty(t, w.live())
}

// Starts of one webhook trigger racing each other register one subscriber.
func TestConcurrentStartsRegisterOneSubscriber(t *testing.T) {
	st := openStore(t)
	w := newFakeWebhook("")
	m := NewManager(st, hookKinds(w), Options{PublicURL: "https://mcp.example.com"})
	t.Cleanup(m.Close)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := m.Start(context.Background(), hookURI)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Len(t, w.registered, 1)
	assert.Len(t, w.live(), 1)
}

// Finding: with a live upstream and default flags the callback was an
// unreachable loopback URL and subscribing still "succeeded". An upstream
// that is not on loopback now refuses a loopback, private or link-local
// callback before any upstream call; a public callback, or an upstream on
// loopback itself (the embedded sandbox), is fine.
func TestStartRefusesACallbackTheUpstreamCannotReach(t *testing.T) {
	for _, public := range []string{
		"http://127.0.0.1:8765", "http://127.9.0.1:8765", "http://localhost:8765", "http://app.localhost", "http://[::1]:8765",
		"http://10.1.2.3:8765", "http://172.16.0.1", "http://172.31.255.254", "http://192.168.1.10:80",
		"http://169.254.169.254", "http://[fc00::1]:8765", "http://[fd12::1]", "http://[fe80::1]:8765",
		"http://[::ffff:127.0.0.1]:8765", "http://0.0.0.0:8765",
	} {
		t.Run(public, func(t *testing.T) {
			st := openStore(t)
			w := newFakeWebhook("https://api.workspan.com")
			m := NewManager(st, hookKinds(w), Options{PublicURL: public})
			t.Cleanup(m.Close)
			_, err := m.Start(context.Background(), hookURI)
			require.ErrorIs(t, err, ErrCallbackUnreachable)
			assert.Contains(t, err.Error(), "--public-url")
			assert.Contains(t, err.Error(), "COSELL_PUBLIC_URL")
			assert.Contains(t, err.Error(), "api.workspan.com")
			assert.Empty(t, w.takeCalls(), "no upstream call")
			_, ok, err := st.Trigger(context.Background(), hookURI)
			require.NoError(t, err)
			assert.False(t, ok, "nothing stored")
			assert.ErrorIs(t, m.CanStart(context.Background(), hookURI), ErrCallbackUnreachable, "CanStart says so too")
		})
	}
	for _, c := range []struct{ upstream, public string }{
		{"https://api.workspan.com", "https://mcp.example.com"},
		{"https://api.workspan.com", "http://203.0.113.7:8765"},
		{"https://api.workspan.com", "http://172.32.0.1:8765"}, // just outside 172.16/12
		{"http://127.0.0.1:39999", "http://127.0.0.1:8765"},    // the sandbox on loopback may call back on loopback
		{"http://localhost:39999", "http://[::1]:8765"},
		{"", "http://127.0.0.1:8765"}, // an upstream that does not say
	} {
		t.Run(c.upstream+"→"+c.public, func(t *testing.T) {
			w := newFakeWebhook(c.upstream)
			m := NewManager(openStore(t), hookKinds(w), Options{PublicURL: c.public})
			t.Cleanup(m.Close)
			require.NoError(t, m.CanStart(context.Background(), hookURI))
			_, err := m.Start(context.Background(), hookURI)
			require.NoError(t, err)
			calls := w.takeCalls()
			require.Len(t, calls, 1)
			assert.True(t, strings.HasPrefix(calls[0], "register "+strings.TrimRight(c.public, "/")+"/webhooks/test/"), calls[0])
		})
	}
}

// A restored trigger whose upstream cannot reach the new callback URL is
// reported and left as stored — active, its subscriber untouched — so a
// restart with a reachable --public-url restores it (replacing the old
// subscriber); other triggers are restored all the same.
func TestRestoreLeavesAnUnreachableTriggerStored(t *testing.T) {
	st := openStore(t)
	w := newFakeWebhook("https://api.workspan.com")
	other := newFakeWebhook("")
	kinds := []Kind{{Name: "test.hook", Base: hookURI, Webhook: w}, {Name: "test.other", Base: "test://other", Webhook: other}}
	first := NewManager(st, kinds, Options{PublicURL: "https://old.example.com"})
	key, err := first.Start(context.Background(), hookURI)
	require.NoError(t, err)
	_, err = first.Start(context.Background(), "test://other")
	require.NoError(t, err)
	first.Close()
	w.takeCalls()
	other.takeCalls()
	stored, before := storedHook(t, st, key)

	m := NewManager(st, kinds, Options{PublicURL: "http://127.0.0.1:8765"})
	err = m.Restore(hangGuard(t))
	m.Close()
	require.ErrorIs(t, err, ErrCallbackUnreachable)
	assert.Contains(t, err.Error(), "--public-url")
	assert.NotContains(t, err.Error(), before.Secret, "the capability path is never named")
	assert.Empty(t, w.takeCalls(), "no upstream call")
	assert.Equal(t, []string{"register http://127.0.0.1:8765/webhooks/test/", "unregister sub-1"}, prefixes(other.takeCalls(), "/webhooks/test/"),
		"the other trigger, whose upstream may call back on loopback, was restored onto the new URL")
	again, _ := storedHook(t, st, key)
	assert.True(t, again.Active)
	assert.JSONEq(t, string(stored.State), string(again.State), "state untouched")

	fixed := NewManager(st, kinds, Options{PublicURL: "https://new.example.com"})
	t.Cleanup(fixed.Close)
	require.NoError(t, fixed.Restore(hangGuard(t)))
	newURL := "https://new.example.com/webhooks/test/" + before.ID + "/" + before.Secret
	assert.Equal(t, []string{"register " + newURL, "unregister sub-1"}, w.takeCalls())
}
