package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"

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
)

// Error is a problem the caller can act on; it becomes a tool result with
// isError set and a machine-readable body.
type Error struct {
	Code              string `json:"code"`
	Message           string `json:"message"`
	RetryAfterSeconds int    `json:"retry_after_seconds,omitempty"`
	// Field names the offending argument, when there is one.
	Field string `json:"field,omitempty"`
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

// AsError maps any error from a handler onto the caller-facing error. This
// is the one place where upstream, throttle and transport failures are
// translated. Messages are cut to MaxErrorMessage bytes, and always come
// from the outermost error's text (a connector redacts credentials there).
func AsError(err error) *Error {
	e := asError(err)
	e.Message = capMessage(e.Message)
	return e
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
		// A 2xx whose body could not be used. (For a write its outcome is
		// unknown; that mapping is to come.)
		return &Error{Code: CodeUpstreamError, Message: be.Error()}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Code: CodeUnavailable, Message: "the upstream did not answer in time; try again"}
	}
	if errors.Is(err, context.Canceled) {
		return &Error{Code: CodeUnavailable, Message: "the request was cancelled"}
	}
	var ne net.Error
	if errors.As(err, &ne) {
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
