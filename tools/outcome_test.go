package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
	"github.com/cosell-mcp/cosell-mcp/internal/upstream"
)

// testCorrelationID is the correlation id every failingCreate call sent.
const testCorrelationID = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"

// failingCreate is a creating tool whose handler fails with err, marked
// with the idempotency key requestID when it is set, and with
// testCorrelationID.
func failingCreate(creates *Creates, err error, requestID string) Tool {
	return New(Spec{Name: "test_create", Title: "Create", Toolset: "test", Operation: "Create", Description: "create", Creates: creates},
		func(context.Context, echoArgs) (echoOut, error) {
			return echoOut{}, WithCorrelationID(WithRequestID(err, requestID), testCorrelationID)
		})
}

// issue finding: duplicate creates — one mapping, in tools.New, turns an
// error that leaves a create's outcome unknown into outcome_unknown with
// advice on how to check; a refusal before sending or by the upstream
// keeps its own code.
func TestCreatesMapsUnknownOutcomes(t *testing.T) {
	body := &upstream.BodyError{Connector: "pipedrive", Status: 201, Kind: upstream.BodyMalformed, Err: errors.New("invalid character 'g'")}
	timeout := &upstream.SentError{Method: http.MethodPost, Err: fmt.Errorf("Post \"http://x\": %w", context.DeadlineExceeded)}
	reset := &upstream.SentError{Method: http.MethodPost, Err: &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}}
	noKey := &Creates{Record: "deal", Check: "search for its title with pipedrive_search_deals"}
	withKey := &Creates{Record: "referral", Check: "list referrals", Retry: "Retrying with the same request_id is safe"}
	const rid = "11111111-2222-4333-8444-555555555555"

	cases := []struct {
		name       string
		creates    *Creates
		err        error
		code       string
		retryAfter int
	}{
		{"2xx with garbage", noKey, upstream.Sent(http.MethodPost, body), CodeOutcomeUnknown, 0},
		{"timeout after sending", noKey, timeout, CodeOutcomeUnknown, 0},
		{"connection reset after sending", noKey, reset, CodeOutcomeUnknown, 0},
		{"502 after sending", noKey, upstream.Sent(http.MethodPost, &upstream.Error{Connector: "pipedrive", Status: 502}), CodeOutcomeUnknown, 0},
		{"503 keeps its Retry-After", withKey, upstream.Sent(http.MethodPost, &upstream.Error{Connector: "partnercenter", Status: 503, RetryAfter: 5 * time.Second}), CodeOutcomeUnknown, 5},
		{"400 is a refusal", noKey, upstream.Sent(http.MethodPost, &upstream.Error{Connector: "pipedrive", Status: 400, Message: "bad"}), CodeInvalidArgument, 0},
		{"429 is a refusal", withKey, upstream.Sent(http.MethodPost, &upstream.Error{Connector: "partnercenter", Status: 429}), CodeThrottled, 1},
		{"refused by our budget before sending", withKey, &throttle.ThrottledError{Connection: "partnercenter", RetryAfter: 3 * time.Second, Limit: 100, Window: time.Minute}, CodeThrottled, 3},
		{"dial error: never left", noKey, &net.OpError{Op: "dial", Err: errors.New("connection refused")}, CodeUnavailable, 0},
		{"a read's garbage before the create", noKey, body, CodeUpstreamError, 0},
		{"a tool's own error", noKey, InvalidArgument("title", "blank"), CodeInvalidArgument, 0},
		{"not a creating tool", nil, upstream.Sent(http.MethodPost, body), CodeUpstreamError, 0},
	}
	for _, c := range cases {
		for _, key := range []string{"", rid} {
			t.Run(fmt.Sprintf("%s/key=%v", c.name, key != ""), func(t *testing.T) {
				_, err := failingCreate(c.creates, c.err, key).Call(context.Background(), json.RawMessage(`{"name":"x"}`))
				require.Error(t, err)
				e := AsError(err)
				assert.Equal(t, c.code, e.Code, e.Message)
				assert.Equal(t, c.retryAfter, e.RetryAfterSeconds)
				assert.Equal(t, key, e.RequestID, "every error carries the request id the call used")
				assert.Equal(t, testCorrelationID, e.CorrelationID, "and its correlation id")
				if c.code != CodeOutcomeUnknown {
					return
				}
				assert.Contains(t, e.Message, "may or may not have been created")
				assert.Contains(t, e.Message, c.creates.Check)
				assert.NotContains(t, e.Message, "try again")
				if c.creates.Retry != "" {
					assert.Contains(t, e.Message, c.creates.Retry)
				} else {
					assert.Contains(t, e.Message, "Do not retry blindly")
				}
				var body struct {
					Error Error `json:"error"`
				}
				res := e.Result()
				require.NoError(t, json.Unmarshal([]byte(res.Content[0].(mcp.TextContent).Text), &body))
				assert.Equal(t, CodeOutcomeUnknown, body.Error.Code)
				assert.Equal(t, key, body.Error.RequestID)
				assert.Equal(t, testCorrelationID, body.Error.CorrelationID)
			})
		}
	}
}

// issue finding: duplicate creates — a write that timed out after it was
// sent is never answered with "try again", whatever the tool; a read, or a
// write that never left, still is.
func TestTimeoutAfterSendingIsNotTryAgain(t *testing.T) {
	deadline := fmt.Errorf("Patch \"http://x\": %w", context.DeadlineExceeded)
	sent := AsError(&upstream.SentError{Method: http.MethodPatch, Err: deadline})
	assert.Equal(t, CodeUnavailable, sent.Code)
	assert.NotContains(t, sent.Message, "try again")
	assert.Contains(t, sent.Message, "may have been applied")
	assert.Contains(t, AsError(deadline).Message, "try again")
}

func TestCreatesSpecIsChecked(t *testing.T) {
	c := &Creates{Record: "deal", Check: "search"}
	for _, spec := range []Spec{
		{Name: "test_a", Toolset: "test", Operation: "A", Creates: c, Idempotent: true},
		{Name: "test_b", Toolset: "test", Operation: "B", Creates: c, ReadOnly: true},
		{Name: "test_c", Toolset: "test", Operation: "C", Creates: &Creates{Record: "deal"}},
	} {
		assert.Panics(t, func() {
			New(spec, func(context.Context, echoArgs) (echoOut, error) { return echoOut{}, nil })
		}, spec.Name)
	}
}
