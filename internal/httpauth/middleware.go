package httpauth

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

const realm = "cosell-mcp"

// Middleware requires a valid bearer credential before calling next. The
// authenticated Principal is stored in the request context (PrincipalFrom).
// Failures are answered with 401, an RFC 6750 WWW-Authenticate challenge
// (including resource_metadata per RFC 9728 when resourceMetadataURL is
// set) and a JSON body; the presented token is never echoed.
func Middleware(a Authenticator, resourceMetadataURL string, next http.Handler) http.Handler {
	if a == nil {
		a = Any() // rejects everything: fail closed
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.Authenticate(r)
		if err != nil {
			unauthorized(w, err, resourceMetadataURL)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

func unauthorized(w http.ResponseWriter, err error, resourceMetadataURL string) {
	desc := sanitize(description(err))
	var b strings.Builder
	b.WriteString(`Bearer realm="` + realm + `"`)
	if !errors.Is(err, ErrMissingCredentials) {
		b.WriteString(`, error="invalid_token", error_description="` + desc + `"`)
	}
	if resourceMetadataURL != "" {
		b.WriteString(`, resource_metadata="` + sanitize(resourceMetadataURL) + `"`)
	}
	h := w.Header()
	h.Set("WWW-Authenticate", b.String())
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusUnauthorized)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": "unauthorized", "message": desc})
}

// sanitize keeps only characters allowed in an RFC 6750 quoted value
// (printable ASCII except '"' and '\').
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return -1
		}
		return r
	}, s)
}

// ProtectedResourceMetadata serves RFC 9728 OAuth 2.0 Protected Resource
// Metadata, to be mounted at /.well-known/oauth-protected-resource.
func ProtectedResourceMetadata(resource string, authorizationServers []string, scopes []string) http.Handler {
	doc, err := json.Marshal(struct {
		Resource               string   `json:"resource"`
		AuthorizationServers   []string `json:"authorization_servers,omitempty"`
		BearerMethodsSupported []string `json:"bearer_methods_supported"`
		ScopesSupported        []string `json:"scopes_supported,omitempty"`
	}{resource, authorizationServers, []string{"header"}, scopes})
	if err != nil {
		panic("httpauth: encoding protected resource metadata: " + err.Error())
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(doc)
	})
}
