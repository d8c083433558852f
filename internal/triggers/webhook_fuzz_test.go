package triggers

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cosell-mcp/cosell-mcp/internal/store"
)

// FuzzWebhookCallback drives the webhook handler (Manager.WebhookHandler)
// through httptest with a real store, with arbitrary callback paths,
// methods, event-id headers and bodies. Whatever the request: no panic; the
// answer is one of the handler's statuses and says what happened — 200
// only for the trigger's exact capability path, a POST, a body within
// MaxCallbackBytes that is a JSON object, and then the event is in the store
// (durable before the 2xx) under the key the handler documents, once.
func FuzzWebhookCallback(f *testing.F) {
	const (
		provider = "workspan"
		hookID   = "4f2a9c01"
		secret   = "9d1e77b3c0a24f6e8b5d2c1a0f9e8d7c6b5a49382716f5e4d3c2b1a0f9e8d7c6"
		uri      = "workspan://triggers/object-events"
	)
	st, err := store.Open(filepath.Join(f.TempDir(), "state.db"), store.Options{RelaxedSync: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = st.Close() })
	state, _ := json.Marshal(map[string]string{"id": hookID, "secret": secret, "subscriber_id": "sub-1"})
	ctx := context.Background()
	if err := st.UpsertTrigger(ctx, store.Trigger{URI: uri, Kind: provider + ".object_events", Params: json.RawMessage(`{}`), State: state, Active: true}); err != nil {
		f.Fatal(err)
	}
	// Another provider's trigger with the same id: never reachable by ours.
	other, _ := json.Marshal(map[string]string{"id": hookID, "secret": "other-secret"})
	if err := st.UpsertTrigger(ctx, store.Trigger{URI: "pipedrive://triggers/x", Kind: "pipedrive.x", Params: json.RawMessage(`{}`), State: other, Active: true}); err != nil {
		f.Fatal(err)
	}
	notified := 0
	m := NewManager(st, nil, Options{Notify: func(string) { notified++ }})
	f.Cleanup(m.Close)
	h := m.WebhookHandler()
	stored := map[string]bool{} // keys this process has seen stored

	valid := func(body, eventID string) { f.Add(uint8(0), provider, hookID, secret, eventID, []byte(body)) }
	valid(`{"event_id":"evt-1","object":{"id":"o-1","name":"Contoso"}}`, "")
	valid(`{"object":{"id":"o-2"}}`, "hdr-7")
	valid(`{"a":1}`, "")
	valid(`{ "a" : 1 }`, "") // the same event, compacted: stored once
	valid(`{"event_id":123}`, "")
	valid(`{"event_id":"","x":null}`, "")
	valid(`{"a":1,"a":2}`, "")
	valid(`[1,2,3]`, "")
	valid(`null`, "")
	valid(`{"a":"\u0000\ud800"}`, "\x00\r\nX-Injected: 1")
	valid("{\"\xff\":1}", "")
	valid(strings.Repeat(`{"a":`, 20000)+"1"+strings.Repeat("}", 20000), "")
	valid(`{"pad":"`+strings.Repeat("x", MaxCallbackBytes)+`"}`, "")
	valid(``, "")
	f.Add(uint8(1), provider, hookID, "wrong-secret", "", []byte(`{"a":1}`))
	f.Add(uint8(1), "pipedrive", hookID, secret, "", []byte(`{"a":1}`))
	f.Add(uint8(1), provider, hookID+"/../"+hookID, secret, "", []byte(`{"a":1}`))
	f.Add(uint8(1), "", "", "", "", []byte(`{}`))
	f.Add(uint8(1), provider+".object_events", hookID, secret[:10], "", []byte(`{}`))
	f.Add(uint8(2), provider, hookID, secret, "", []byte(`{"a":1}`))
	f.Add(uint8(3), "..", "%2e%2e", "%00", "", []byte("\x00"))

	f.Fuzz(func(t *testing.T, mode uint8, prov, id, sec, eventID string, body []byte) {
		if mode&1 == 0 {
			prov, id, sec = provider, hookID, secret
		}
		method := http.MethodPost
		if mode&2 != 0 {
			method = []string{http.MethodGet, http.MethodPut, http.MethodDelete, "BREW"}[int(mode>>2)%4]
		}
		req := httptest.NewRequest(http.MethodPost, "/webhooks/x/y/z", bytes.NewReader(body))
		req.Method = method
		req.URL = &url.URL{Path: "/webhooks/" + prov + "/" + id + "/" + sec}
		if eventID != "" {
			req.Header["X-Ws-Event-Id"] = []string{eventID}
		}
		before, err := st.LatestSeq(ctx, uri)
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		exact := prov == provider && id == hookID && sec == secret
		var obj map[string]json.RawMessage
		isObject := json.Unmarshal(body, &obj) == nil && obj != nil
		want := http.StatusOK
		switch {
		case method != http.MethodPost:
			want = http.StatusMethodNotAllowed
		case !exact:
			want = http.StatusNotFound
		case len(body) > MaxCallbackBytes:
			want = http.StatusRequestEntityTooLarge
		case !isObject:
			want = http.StatusBadRequest
		}
		if rec.Code != want {
			t.Fatalf("%s %q: status %d, want %d (body %d bytes)", method, req.URL.Path, rec.Code, want, len(body))
		}
		after, err := st.LatestSeq(ctx, uri)
		if err != nil {
			t.Fatal(err)
		}
		if want != http.StatusOK {
			if after != before {
				t.Fatalf("status %d but an event was stored", rec.Code)
			}
			return
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, body); err != nil {
			t.Fatal(err)
		}
		key := eventID
		if key == "" {
			var s string
			if json.Unmarshal(obj["event_id"], &s) == nil {
				key = s
			}
		}
		if key == "" {
			key = keyOf(compact.Bytes())
		}
		evs, err := st.EventsAfter(ctx, uri, before, 10)
		if err != nil {
			t.Fatal(err)
		}
		switch len(evs) {
		case 0:
			if !stored[key] {
				t.Fatalf("200 but nothing stored under %q, and it was not stored before", key)
			}
		case 1:
			if evs[0].Key != key || !bytes.Equal(evs[0].Payload, compact.Bytes()) || stored[key] {
				t.Fatalf("stored %q %s (seen before: %v), want %q %s", evs[0].Key, evs[0].Payload, stored[key], key, compact.Bytes())
			}
			stored[key] = true
		default:
			t.Fatalf("one delivery stored %d events", len(evs))
		}
	})
}
