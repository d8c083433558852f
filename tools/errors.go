package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/cosell-mcp/cosell-mcp/connectors/partnercenter"
	"github.com/cosell-mcp/cosell-mcp/connectors/workspan"
	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
	"github.com/cosell-mcp/cosell-mcp/internal/triggers"
	"github.com/cosell-mcp/cosell-mcp/internal/upstream"
)

// Error codes a caller can act on. See DESIGN.md, "Errors".
const (
	CodeInvalidArgument = "invalid_argument"
	CodeNotFound        = "not_found"
	CodeConflict        = "conflict"
	CodeThrottled       = "throttled"
	CodeUnauthorized    = "unauthorized"
	CodeForbidden       = "forbidden"
	CodeUpstreamError   = "upstream_error"
	CodeUnavailable     = "unavailable"
	// CodeOutcomeUnknown: a create was sent upstream but no trustworthy
	// answer came back (a 2xx with an unusable body, a timeout or a lost
	// connection after the request went out, a 5xx), so the record may or
	// may not exist. The message says how to check before creating it
	// again, or how to retry safely (Spec.Creates).
	CodeOutcomeUnknown = "outcome_unknown"
)

// Error is a problem the caller can act on; it becomes a tool result with
// isError set and a machine-readable body.
type Error struct {
	Code              string `json:"code"`
	Message           string `json:"message"`
	RetryAfterSeconds int    `json:"retry_after_seconds,omitempty"`
	// Field names the offending argument, when there is one.
	Field string `json:"field,omitempty"`
	// RequestID is the idempotency key the call sent upstream (Partner
	// Center's MS-RequestId), when it had one: retrying with the same one
	// is the same request to the upstream (WithRequestID).
	RequestID string `json:"request_id,omitempty"`
	// CorrelationID is the id the call sent upstream to tie its requests
	// together in the upstream's logs (Partner Center's MS-CorrelationId),
	// for a support case (WithCorrelationID).
	CorrelationID string `json:"correlation_id,omitempty"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// InvalidArgument reports a bad argument; it is raised before any upstream
// call. The message is cut to MaxErrorMessage bytes.
func InvalidArgument(field, format string, args ...any) *Error {
	return &Error{Code: CodeInvalidArgument, Field: elide(oneLine(field)), Message: capMessage(fmt.Sprintf(format, args...))}
}

// NotFound reports a missing object.
func NotFound(format string, args ...any) *Error {
	return &Error{Code: CodeNotFound, Message: fmt.Sprintf(format, args...)}
}

// NamedNotFound turns an upstream 404 into not_found naming what was not
// found and how to find valid ones, e.g. NamedNotFound(err, "id",
// "referral X", "find referrals with partnercenter_list_referrals"); field
// is the argument that named it ("" for none), and the upstream's own text
// follows in parentheses. Any other error is returned as is.
func NamedNotFound(err error, field, what, hint string) error {
	var ue *upstream.Error
	if !errors.As(err, &ue) || ue.Status != http.StatusNotFound {
		return err
	}
	msg := what + " not found; " + hint
	if text := strings.TrimSpace(ue.Message); text != "" {
		msg += " (" + ue.Connector + ": " + elide(oneLine(text)) + ")"
	}
	return &Error{Code: CodeNotFound, Field: field, Message: capMessage(msg)}
}

// AsError maps any error from a handler onto the caller-facing error. This
// is the one place where upstream, throttle and transport failures are
// translated. Messages are cut to MaxErrorMessage bytes, and always come
// from the outermost error's text (a connector redacts credentials there).
func AsError(err error) *Error {
	e := *asError(err)
	e.Message = capMessage(e.Message)
	var rid *requestIDError
	if e.RequestID == "" && errors.As(err, &rid) {
		e.RequestID = rid.id
	}
	if e.CorrelationID == "" {
		e.CorrelationID = correlationIDOf(err)
	}
	return &e
}

// WithCorrelationID marks err as the failure of a call whose upstream
// requests carried id as their correlation id (Partner Center's
// MS-CorrelationId): the caller-facing error carries it as
// correlation_id. nil stays nil.
func WithCorrelationID(err error, id string) error {
	if err == nil || id == "" {
		return err
	}
	return &correlationIDError{err: err, id: id}
}

type correlationIDError struct {
	err error
	id  string
}

func (e *correlationIDError) Error() string { return e.err.Error() }
func (e *correlationIDError) Unwrap() error { return e.err }

func correlationIDOf(err error) string {
	var cid *correlationIDError
	if errors.As(err, &cid) {
		return cid.id
	}
	return ""
}

// WithRequestID marks err as the failure of a call that sent id upstream
// as its idempotency key (Partner Center's MS-RequestId): the caller-facing
// error carries it as request_id, so that a retry can reuse it. nil stays
// nil.
func WithRequestID(err error, id string) error {
	if err == nil || id == "" {
		return err
	}
	return &requestIDError{err: err, id: id}
}

type requestIDError struct {
	err error
	id  string
}

func (e *requestIDError) Error() string { return e.err.Error() }
func (e *requestIDError) Unwrap() error { return e.err }

// Creates describes a tool that creates an upstream record, whose request
// cannot be repeated blindly: if it reached the upstream but no
// trustworthy answer came back (upstream.OutcomeUnknown), the record may
// exist, and the call fails with outcome_unknown instead of an error that
// invites a retry. A refusal before the request left (the throttle budget,
// no connection) or by the upstream (4xx, 429) keeps its own code: nothing
// was created.
type Creates struct {
	// Record names what is created, e.g. "deal".
	Record string
	// Check says how to find out whether it was created, e.g. "search
	// its title with pipedrive_search_deals".
	Check string
	// Retry, for a tool whose calls carry an idempotency key, says how to
	// retry safely, e.g. "Retrying with the same request_id is safe: …".
	// Empty: there is no safe retry, only Check.
	Retry string
}

// outcomeUnknown turns err into an outcome_unknown *Error when err says
// the create reached the upstream without a trustworthy answer; otherwise
// it returns err as is.
func (c *Creates) outcomeUnknown(err error) error {
	if c == nil || !upstream.OutcomeUnknown(err) {
		return err
	}
	var te *Error
	if errors.As(err, &te) {
		return err
	}
	msg := fmt.Sprintf("the request was sent but no trustworthy answer came back (%s): the %s may or may not have been created. ", err.Error(), c.Record)
	if c.Retry != "" {
		msg += c.Retry + ". To check instead: " + c.Check + "."
	} else {
		msg += "Do not retry blindly: first " + c.Check + ", and create it again only if it is not there."
	}
	unknown := &Error{Code: CodeOutcomeUnknown, Message: msg, RetryAfterSeconds: asError(err).RetryAfterSeconds}
	return WithCorrelationID(WithRequestID(unknown, requestIDOf(err)), correlationIDOf(err))
}

func requestIDOf(err error) string {
	var rid *requestIDError
	if errors.As(err, &rid) {
		return rid.id
	}
	return ""
}

func asError(err error) *Error {
	var te *Error
	if errors.As(err, &te) {
		return te
	}
	var full *throttle.ConnectionsFullError
	if errors.As(err, &full) {
		return &Error{Code: CodeThrottled, Message: full.Error(), RetryAfterSeconds: full.RetryAfterSeconds()}
	}
	var thr *throttle.ThrottledError
	if errors.As(err, &thr) {
		return &Error{Code: CodeThrottled, Message: thr.Error(), RetryAfterSeconds: thr.RetryAfterSeconds()}
	}
	if errors.Is(err, throttle.ErrSharedUnavailable) {
		return &Error{Code: CodeUnavailable, Message: err.Error() + "; try again when the database is back", RetryAfterSeconds: 5}
	}
	// A request a client refused before sending it, and a URI no trigger
	// accepts, are the caller's to fix.
	if errors.Is(err, partnercenter.ErrInvalidArgument) || errors.Is(err, workspan.ErrInvalidArgument) || errors.Is(err, triggers.ErrUnknownTrigger) {
		return &Error{Code: CodeInvalidArgument, Message: err.Error()}
	}
	var ue *upstream.Error
	if errors.As(err, &ue) {
		return fromUpstream(ue)
	}
	var be *upstream.BodyError
	if errors.As(err, &be) {
		// A 2xx whose body could not be used. A create tool reports it as
		// outcome_unknown (Spec.Creates) before it gets here.
		return &Error{Code: CodeUpstreamError, Message: be.Error()}
	}
	// A write that went out and got no answer may have been carried out:
	// the caller is told to look before repeating it, not to try again.
	sent := upstream.RequestSent(err)
	if errors.Is(err, context.DeadlineExceeded) {
		if sent {
			return &Error{Code: CodeUnavailable, Message: "the upstream did not answer in time, after the change was sent: it may have been applied; read the record before repeating it"}
		}
		return &Error{Code: CodeUnavailable, Message: "the upstream did not answer in time; try again"}
	}
	if errors.Is(err, context.Canceled) {
		if sent {
			return &Error{Code: CodeUnavailable, Message: "the request was cancelled after the change was sent: it may have been applied"}
		}
		return &Error{Code: CodeUnavailable, Message: "the request was cancelled"}
	}
	var ne net.Error
	if errors.As(err, &ne) {
		if sent {
			return &Error{Code: CodeUnavailable, Message: "the connection failed after the change was sent: it may have been applied; read the record before repeating it: " + err.Error()}
		}
		return &Error{Code: CodeUnavailable, Message: "the upstream could not be reached: " + err.Error()}
	}
	return &Error{Code: CodeUpstreamError, Message: err.Error()}
}

func fromUpstream(e *upstream.Error) *Error {
	out := &Error{Message: e.Error()}
	switch {
	case e.Status == http.StatusBadRequest || e.Status == http.StatusUnprocessableEntity:
		out.Code = CodeInvalidArgument
	case e.Status == http.StatusUnauthorized:
		out.Code = CodeUnauthorized
		out.Message += "; check the connector's credential"
	case e.Status == http.StatusForbidden:
		out.Code = CodeForbidden
	case e.Status == http.StatusNotFound || e.Status == http.StatusGone:
		out.Code = CodeNotFound
	case e.Status == http.StatusConflict || e.Status == http.StatusPreconditionFailed:
		out.Code = CodeConflict
	case e.Status == http.StatusTooManyRequests:
		out.Code = CodeThrottled
		out.RetryAfterSeconds = max(1, throttle.Seconds(e.RetryAfter))
	case e.Status >= 500:
		out.Code = CodeUnavailable
		out.RetryAfterSeconds = throttle.Seconds(e.RetryAfter)
	default:
		out.Code = CodeUpstreamError
	}
	return out
}

// Result renders the error as an isError tool result whose text is
// {"error":{...}}; the message is cut to MaxErrorMessage bytes.
func (e *Error) Result() *mcp.CallToolResult {
	capped := *e
	capped.Message = capMessage(e.Message)
	body, _ := json.Marshal(map[string]any{"error": &capped})
	return &mcp.CallToolResult{
		Content: []mcp.Content{mcp.NewTextContent(string(body))},
		IsError: true,
	}
}
