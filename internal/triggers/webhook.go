package triggers

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/cosell-mcp/cosell-mcp/internal/store"
)

// MaxCallbackBytes bounds one webhook delivery.
const MaxCallbackBytes = 1 << 20

// WebhookHandler serves /webhooks/{provider}/{id}/{secret}. A delivery is
// accepted only for an active trigger whose unguessable secret matches
// (compared in constant time), within the size limit and as a JSON object;
// it is written durably before the 2xx, and a repeated delivery (same
// event id, or same body) is stored once.
func (m *Manager) WebhookHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/webhooks/"), "/"), "/")
		if len(parts) != 3 {
			http.NotFound(w, r)
			return
		}
		uri, ok := m.webhookTrigger(r, parts[0], parts[1], parts[2])
		if !ok {
			http.NotFound(w, r) // the same answer for a wrong id or secret
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxCallbackBytes))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				http.Error(w, "payload too large", http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "cannot read body", http.StatusBadRequest)
			return
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
			http.Error(w, "body must be a JSON object", http.StatusBadRequest)
			return
		}
		var compact bytes.Buffer
		_ = json.Compact(&compact, body)
		key := r.Header.Get("X-WS-Event-Id")
		if key == "" {
			var id string
			if json.Unmarshal(obj["event_id"], &id) == nil && id != "" {
				key = id
			}
		}
		if key == "" {
			key = keyOf(compact.Bytes())
		}
		added, err := m.store.Append(r.Context(), uri, []store.NewEvent{{Key: key, Payload: compact.Bytes()}})
		if err != nil {
			m.log.Error("storing webhook event failed", "trigger", uri, "error", err)
			http.Error(w, "not stored; retry", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
		if len(added) > 0 {
			m.notify(uri)
		}
	})
}

// webhookTrigger finds the active trigger a callback path names.
func (m *Manager) webhookTrigger(r *http.Request, provider, id, secret string) (string, bool) {
	ts, err := m.store.Triggers(r.Context(), true)
	if err != nil {
		return "", false
	}
	for _, t := range ts {
		if !strings.HasPrefix(t.Kind, provider+".") {
			continue
		}
		var st webhookState
		if json.Unmarshal(t.State, &st) != nil || st.ID != id {
			continue
		}
		if subtle.ConstantTimeCompare([]byte(st.Secret), []byte(secret)) == 1 {
			return t.URI, true
		}
		return "", false
	}
	return "", false
}
