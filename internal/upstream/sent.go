package upstream

import (
	"errors"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
)

// SentError is the failure of a write (a request whose method is not
// safe: POST, PUT, PATCH, DELETE) that reached, or may have reached, the
// upstream before it failed: a reply came back (an *Error, or a 2xx whose
// body could not be used, a *BodyError), or the connection failed or timed
// out after the request had started to go out. The upstream may have acted
// on it, so repeating it blindly may do the work twice (OutcomeUnknown).
//
// A write that never left (a dial error, a refusal by the throttle budget,
// a token that could not be had) is not a SentError: it is safe to repeat.
// Neither is a read: repeating a read is always safe. A client wraps the
// error with Sent or a Tracker; errors.As still finds the cause, and the
// text is the cause's.
type SentError struct {
	// Method is the request's method, e.g. "POST".
	Method string
	// Err is the cause: an *Error, a *BodyError or a transport error.
	Err error
}

// Error implements error with the cause's text.
func (e *SentError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *SentError) Unwrap() error { return e.Err }

// RequestSent reports whether err is the failure of a write that reached,
// or may have reached, the upstream (a *SentError in its chain).
func RequestSent(err error) bool {
	var se *SentError
	return errors.As(err, &se)
}

// OutcomeUnknown reports whether err leaves it unknown if a write was
// carried out upstream: it is a *SentError whose cause is not a
// trustworthy refusal. That is
//   - a 2xx reply whose body could not be used (*BodyError): the upstream
//     acted, but what it made is not known;
//   - a transport failure or timeout after the request started to go out
//     (the reply was lost, not necessarily the request);
//   - a 5xx reply (*Error with Status ≥ 500): a server or gateway failure
//     says nothing about whether the work was done before it (a gateway's
//     502/504 comes after the request was passed on).
//
// A 4xx reply (including 429) is a refusal: the write was not carried out
// and the error is reported as such.
func OutcomeUnknown(err error) bool {
	var se *SentError
	if !errors.As(err, &se) {
		return false
	}
	var ue *Error
	if errors.As(se.Err, &ue) {
		return ue.Status >= 500
	}
	return true
}

// Safe reports whether method is a read (GET, HEAD, OPTIONS, TRACE or
// empty, which net/http takes as GET), which is always safe to repeat.
func Safe(method string) bool {
	switch method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// Sent wraps err, the failure of a request with the given method that
// reached the upstream (it got a reply, or its reply body failed), in a
// *SentError when method is a write. nil stays nil; a read's error, and an
// error that already is a SentError, are returned as they are.
func Sent(method string, err error) error {
	if err == nil || Safe(method) || RequestSent(err) {
		return err
	}
	return &SentError{Method: method, Err: err}
}

// Tracker tells whether one HTTP request has started to go out on a
// connection, through net/http/httptrace: a failure after that point may
// have reached the upstream; one before it (no connection, a refusal by a
// RoundTripper before sending) did not. It watches every attempt made with
// the request it returned, so a transport's own retries count too.
type Tracker struct {
	method string
	wrote  atomic.Bool
}

// Track returns req with a client trace that records when its headers are
// written to a connection (the first bytes a server can act on), and the
// Tracker that reports it. Hooks of a trace already in req's context still
// run. Attach it to the API request only, not to a token request.
func Track(req *http.Request) (*http.Request, *Tracker) {
	t := &Tracker{method: req.Method}
	trace := &httptrace.ClientTrace{
		// WroteHeaders is the earliest sign that the request is on the
		// wire; counting from it (rather than from a complete write) errs
		// on the side of "may have been sent".
		WroteHeaders: func() { t.wrote.Store(true) },
		WroteRequest: func(httptrace.WroteRequestInfo) { t.wrote.Store(true) },
	}
	return req.WithContext(httptrace.WithClientTrace(req.Context(), trace)), t
}

// Wrote reports whether the request (any attempt of it) has started to
// go out.
func (t *Tracker) Wrote() bool { return t.wrote.Load() }

// Wrap returns the error of a round trip that got no reply: a *SentError
// when the request is a write that had started to go out, else err as is.
func (t *Tracker) Wrap(err error) error {
	if err == nil || !t.Wrote() {
		return err
	}
	return Sent(t.method, err)
}
