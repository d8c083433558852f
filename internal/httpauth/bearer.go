package httpauth

import (
	"net/http"
	"strings"
)

// bearerToken extracts the token from "Authorization: Bearer <token>".
// A missing header or a different scheme yields ErrMissingCredentials
// (RFC 6750 §3.1: no error code for requests without bearer credentials).
func bearerToken(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", ErrMissingCredentials
	}
	scheme, rest, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", ErrMissingCredentials
	}
	tok := strings.TrimLeft(rest, " ")
	if tok == "" || strings.ContainsAny(tok, " \t") {
		return "", reject("malformed authorization header", nil)
	}
	return tok, nil
}
