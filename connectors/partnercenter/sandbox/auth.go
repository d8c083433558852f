package sandbox

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Bearer authentication of the API

func (s *Server) authenticate(r *http.Request, now time.Time) *apiError {
	challenge := func(desc string) *apiError {
		return &apiError{
			status: http.StatusUnauthorized,
			msg:    desc,
			header: map[string]string{"WWW-Authenticate": fmt.Sprintf(`Bearer error="invalid_token", error_description=%q`, desc)},
		}
	}
	authz := r.Header.Get("Authorization")
	if authz == "" {
		return &apiError{
			status: http.StatusUnauthorized,
			msg:    "Authorization has been denied for this request: the Authorization header is missing.",
			header: map[string]string{"WWW-Authenticate": "Bearer"},
		}
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(authz), " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return challenge("Authorization has been denied for this request: a Bearer token is required.")
	}
	if hmac.Equal([]byte(tok), []byte(s.token)) {
		return nil
	}
	exp, known := s.access[tok]
	switch {
	case !known:
		return challenge("Authorization has been denied for this request: the access token is invalid.")
	case !now.Before(exp):
		return challenge("Authorization has been denied for this request: the access token has expired.")
	}
	return nil
}

// Token endpoint (Microsoft Entra ID v2.0)

type refreshGrant struct {
	clientID string
	scope    string
	expires  time.Time
}

type tokenResponse struct {
	TokenType    string `json:"token_type"`
	Scope        string `json:"scope"`
	ExpiresIn    int    `json:"expires_in"`
	ExtExpiresIn int    `json:"ext_expires_in"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token,omitempty"`
}

type oauthError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	ErrorCodes       []int  `json:"error_codes"`
	Timestamp        string `json:"timestamp"`
	TraceID          string `json:"trace_id"`
	CorrelationID    string `json:"correlation_id"`
}

const defaultScope = "https://api.partner.microsoft.com/.default"

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request, tenant string, body []byte, tooLarge bool, now time.Time) {
	fail := func(status int, code string, aadsts int, desc string) {
		h := w.Header()
		h.Set("Cache-Control", "no-store, no-cache")
		h.Set("Pragma", "no-cache")
		if status == http.StatusUnauthorized {
			h.Set("WWW-Authenticate", `Basic realm="sandbox"`)
		}
		trace, corr := w.Header().Get("Request-ID"), newGUID(s.headerRng)
		ts := now.UTC().Format("2006-01-02 15:04:05Z")
		e := oauthError{
			Error:            code,
			ErrorDescription: fmt.Sprintf("AADSTS%d: %s Trace ID: %s Correlation ID: %s Timestamp: %s", aadsts, desc, trace, corr, ts),
			ErrorCodes:       []int{aadsts},
			Timestamp:        ts,
			TraceID:          trace,
			CorrelationID:    corr,
		}
		writeRaw(w, status, jsonContentType, marshal(e))
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		fail(http.StatusMethodNotAllowed, "invalid_request", 900561, "The endpoint only accepts POST requests.")
		return
	}
	if tooLarge {
		fail(http.StatusBadRequest, "invalid_request", 900144, "The request body is too large.")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		fail(http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		fail(http.StatusBadRequest, "invalid_request", 900144, "The request body is not a valid form.")
		return
	}

	clientID, clientSecret := form.Get("client_id"), form.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		u, _ = url.QueryUnescape(u)
		p, _ = url.QueryUnescape(p)
		if clientID != "" && clientID != u {
			fail(http.StatusBadRequest, "invalid_request", 90014, "The client_id in the body does not match the one in the Authorization header.")
			return
		}
		clientID, clientSecret = u, p
	}
	grant := form.Get("grant_type")
	if grant == "" {
		fail(http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
		return
	}
	if grant != "client_credentials" && grant != "refresh_token" {
		fail(http.StatusBadRequest, "unsupported_grant_type", 70003, fmt.Sprintf("The app requested an unsupported grant type '%s'.", grant))
		return
	}
	if clientID == "" {
		fail(http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'client_id'.")
		return
	}
	if clientID != s.clientID {
		fail(http.StatusUnauthorized, "invalid_client", 700016, fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'.", clientID, tenant))
		return
	}
	if clientSecret == "" {
		fail(http.StatusUnauthorized, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
		return
	}
	if !hmac.Equal([]byte(clientSecret), []byte(s.clientSecret)) {
		fail(http.StatusUnauthorized, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.")
		return
	}

	scope := form.Get("scope")
	switch grant {
	case "client_credentials":
		if scope == "" {
			scope = defaultScope
		}
	case "refresh_token":
		rt := form.Get("refresh_token")
		if rt == "" {
			fail(http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'refresh_token'.")
			return
		}
		g, ok := s.refresh[rt]
		if !ok || g.clientID != clientID {
			fail(http.StatusBadRequest, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid: the refresh token is unknown or was already used.")
			return
		}
		delete(s.refresh, rt) // rotation: a refresh token is good for one exchange
		if !now.Before(g.expires) {
			fail(http.StatusBadRequest, "invalid_grant", 700082, "The refresh token has expired due to inactivity.")
			return
		}
		if scope == "" {
			scope = g.scope
		}
	}

	s.pruneTokens(now)
	resp := tokenResponse{
		TokenType:    "Bearer",
		Scope:        scope,
		ExpiresIn:    int(s.tokenTTL / time.Second),
		ExtExpiresIn: int(s.tokenTTL / time.Second),
		AccessToken:  s.issueAccessToken(tenant, clientID, scope, now),
	}
	if grant == "refresh_token" || hasScope(scope, "offline_access") {
		rt := s.randomToken(48)
		s.refresh[rt] = refreshGrant{clientID: clientID, scope: scope, expires: now.Add(refreshTokenTTL)}
		resp.RefreshToken = rt
	}
	w.Header().Set("Cache-Control", "no-store, no-cache")
	w.Header().Set("Pragma", "no-cache")
	writeRaw(w, http.StatusOK, jsonContentType, marshal(resp))
}

func hasScope(scope, want string) bool {
	for _, s := range strings.Fields(scope) {
		if strings.EqualFold(s, want) {
			return true
		}
	}
	return false
}

// issueAccessToken returns a JWT-shaped access token (HS256, signed with a per-seed key) and
// records its expiry. Clients must treat it as opaque; the sandbox accepts it until it expires.
func (s *Server) issueAccessToken(tenant, clientID, scope string, now time.Time) string {
	enc := base64.RawURLEncoding
	header, _ := json.Marshal(map[string]string{"typ": "JWT", "alg": "HS256", "kid": "sandbox"})
	exp := now.Add(s.tokenTTL)
	claims, _ := json.Marshal(map[string]any{
		"aud":   "https://api.partner.microsoft.com",
		"iss":   "https://sts.windows.net/" + tenant + "/",
		"iat":   now.Unix(),
		"nbf":   now.Unix(),
		"exp":   exp.Unix(),
		"appid": clientID,
		"tid":   tenant,
		"scp":   scope,
		"uti":   s.randomToken(16),
		"ver":   "1.0",
	})
	signing := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	mac := hmac.New(sha256.New, s.tokenKey)
	mac.Write([]byte(signing))
	tok := signing + "." + enc.EncodeToString(mac.Sum(nil))
	s.access[tok] = exp
	return tok
}

func (s *Server) randomToken(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(s.tokenRng.UintN(256))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// pruneTokens forgets expired tokens once there are many of them.
func (s *Server) pruneTokens(now time.Time) {
	if len(s.access) > 1024 {
		for t, exp := range s.access {
			if !now.Before(exp) {
				delete(s.access, t)
			}
		}
	}
	if len(s.refresh) > 1024 {
		for t, g := range s.refresh {
			if !now.Before(g.expires) {
				delete(s.refresh, t)
			}
		}
	}
}

func writeRaw(w http.ResponseWriter, status int, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
