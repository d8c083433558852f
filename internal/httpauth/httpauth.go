// Package httpauth authenticates requests to the streamable HTTP transport.
//
// Two credential types are supported, both presented as
// "Authorization: Bearer <token>":
//
//   - static API keys, stored only as SHA-256 hashes ("sha256:<hex>") and
//     compared in constant time;
//   - OAuth 2.1 access tokens (JWTs) issued by an external authorization
//     server and validated against its JWKS (resource-server mode).
//
// Middleware enforces authentication and answers failures with an RFC 6750
// challenge that points clients at the RFC 9728 Protected Resource Metadata
// served by ProtectedResourceMetadata.
package httpauth

import (
	"context"
	"errors"
	"net/http"
)

// Authentication methods reported in Principal.Method.
const (
	MethodAPIKey = "api_key"
	MethodJWT    = "jwt"
)

// Principal identifies an authenticated caller.
type Principal struct {
	// Subject is the API key name or the token's "sub" claim.
	Subject string
	// Method is MethodAPIKey or MethodJWT.
	Method string
	// Scopes granted by the token; nil for API keys.
	Scopes []string
}

type principalKey struct{}

// WithPrincipal returns a copy of ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the Principal stored in ctx by Middleware.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Authenticator validates the credentials of a request. A non-nil error
// means the request is not authenticated and must be answered with 401.
type Authenticator interface {
	Authenticate(r *http.Request) (Principal, error)
}

// ErrMissingCredentials is returned when the request carries no bearer token.
var ErrMissingCredentials = errors.New("missing bearer token")

// authError is a rejection with a client-safe description. notApplicable
// marks a credential that this authenticator does not recognise at all
// (for example an opaque string given to the JWT validator), so that Any can
// prefer the error of an authenticator that did recognise it.
type authError struct {
	desc          string
	notApplicable bool
	err           error
}

func (e *authError) Error() string {
	if e.err == nil {
		return e.desc
	}
	return e.desc + ": " + e.err.Error()
}

func (e *authError) Unwrap() error { return e.err }

func reject(desc string, err error) error { return &authError{desc: desc, err: err} }

func notApplicable(desc string) error { return &authError{desc: desc, notApplicable: true} }

// description returns a client-safe description of an authentication error.
func description(err error) string {
	if errors.Is(err, ErrMissingCredentials) {
		return ErrMissingCredentials.Error()
	}
	var ae *authError
	if errors.As(err, &ae) {
		return ae.desc
	}
	return "invalid token"
}

func isNotApplicable(err error) bool {
	var ae *authError
	return errors.As(err, &ae) && ae.notApplicable
}

// Any returns an Authenticator that accepts a request if any of auths
// accepts it, trying them in order. When all reject, the error of the first
// authenticator that recognised the credential is returned (for example the
// JWT validator's "token expired" rather than the API key store's "invalid
// API key"); otherwise the first error. Nil authenticators are skipped.
func Any(auths ...Authenticator) Authenticator {
	list := make([]Authenticator, 0, len(auths))
	for _, a := range auths {
		if a != nil {
			list = append(list, a)
		}
	}
	return anyAuth(list)
}

type anyAuth []Authenticator

func (as anyAuth) Authenticate(r *http.Request) (Principal, error) {
	var first, applicable error
	for _, a := range as {
		p, err := a.Authenticate(r)
		if err == nil {
			return p, nil
		}
		if errors.Is(err, ErrMissingCredentials) {
			return Principal{}, err
		}
		if first == nil {
			first = err
		}
		if applicable == nil && !isNotApplicable(err) {
			applicable = err
		}
	}
	switch {
	case applicable != nil:
		return Principal{}, applicable
	case first != nil:
		return Principal{}, first
	default:
		return Principal{}, reject("no authenticator configured", nil)
	}
}
