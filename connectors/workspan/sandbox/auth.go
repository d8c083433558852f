package sandbox

import (
	"crypto/subtle"
	"fmt"
	"mime"
	"net/http"
	"net/url"
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
	authz := strings.TrimSpace(r.Header.Get("Authorization"))
	if authz == "" {
		return &apiError{
			status: http.StatusUnauthorized,
			msg:    "Missing Authorization header: a Bearer access token is required",
			header: map[string]string{"WWW-Authenticate": "Bearer"},
		}
	}
	scheme, tok, found := strings.Cut(authz, " ")
	tok = strings.TrimSpace(tok)
	if !found || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return challenge("A Bearer access token is required")
	}
	exp, known := s.access[tok]
	switch {
	case !known:
		return challenge("The access token is invalid")
	case !now.Before(exp):
		return challenge("The access token has expired")
	}
	return nil
}

// Token endpoint

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
	Scope        string `json:"scope"`
}

type oauthError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request, body []byte, tooLarge bool, now time.Time) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	fail := func(status int, code, desc string) {
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="workspan"`)
		}
		writeJSON(w, status, oauthError{Error: code, ErrorDescription: desc})
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		fail(http.StatusMethodNotAllowed, "invalid_request", "The token endpoint only accepts POST")
		return
	}
	if tooLarge {
		fail(http.StatusBadRequest, "invalid_request", "The request body is too large")
		return
	}
	env := queryOf(r).Get(envHeader)
	if env == "" {
		env = r.Header.Get(envHeader)
	}
	if err := s.checkEnv(env); err != nil {
		fail(http.StatusBadRequest, "invalid_request", err.msg)
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		fail(http.StatusBadRequest, "invalid_request", "The request body must be application/x-www-form-urlencoded")
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		fail(http.StatusBadRequest, "invalid_request", "The request body is not a valid form")
		return
	}
	clientID, clientSecret := form.Get("client_id"), form.Get("client_secret")
	if u, p, found := r.BasicAuth(); found {
		clientID, clientSecret = u, p
	}
	grant := form.Get("grant_type")
	switch {
	case grant == "":
		fail(http.StatusBadRequest, "invalid_request", "Missing required parameter: grant_type")
		return
	case grant != "client_credentials":
		fail(http.StatusBadRequest, "unsupported_grant_type", fmt.Sprintf("Unsupported grant type %q: use client_credentials", grant))
		return
	case clientID == "":
		fail(http.StatusBadRequest, "invalid_request", "Missing required parameter: client_id")
		return
	case clientSecret == "":
		fail(http.StatusBadRequest, "invalid_request", "Missing required parameter: client_secret")
		return
	}
	if subtle.ConstantTimeCompare([]byte(clientID), []byte(s.appUserID)) != 1 ||
		subtle.ConstantTimeCompare([]byte(clientSecret), []byte(s.appSecret)) != 1 {
		fail(http.StatusUnauthorized, "invalid_client", "Client authentication failed: unknown application user or wrong secret")
		return
	}
	switch op := form.Get("operation"); op {
	case "", "token":
	case "refresh":
		if rt := form.Get("refresh_token"); rt != "" {
			if !s.refresh[rt] {
				fail(http.StatusBadRequest, "invalid_grant", "The refresh token is invalid or was already used")
				return
			}
			delete(s.refresh, rt) // rotation: a refresh token works once
		}
	default:
		fail(http.StatusBadRequest, "invalid_request", fmt.Sprintf("Unknown operation %q: use token or refresh", op))
		return
	}
	s.pruneTokens(now)
	access := "wsat_" + newHex(s.tokenRng, 40)
	refresh := "wsrt_" + newHex(s.tokenRng, 40)
	s.access[access] = now.Add(s.tokenTTL)
	s.refresh[refresh] = true
	writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken:  access,
		TokenType:    "Bearer",
		ExpiresIn:    int(s.tokenTTL / time.Second),
		RefreshToken: refresh,
		Scope:        "read write",
	})
}

// pruneTokens forgets expired access tokens once there are many.
func (s *Server) pruneTokens(now time.Time) {
	if len(s.access) < 1024 {
		return
	}
	for tok, exp := range s.access {
		if !now.Before(exp) {
			delete(s.access, tok)
		}
	}
}
