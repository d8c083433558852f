package workspan

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/upstream"
)

// issue finding: duplicate creates — the client tells a write whose
// outcome is unknown (a reply came, or the connection failed after the
// request went out) from one that never left, and a read from both.
func TestWritesThatReachedWorkSpanAreMarked(t *testing.T) {
	cases := []struct {
		name          string
		reply         http.HandlerFunc
		sent, unknown bool
	}{
		{"2xx with garbage", reply(200, `{"execution_id":`), true, true},
		{"503", reply(503, `{"message":"down"}`), true, true},
		{"400", reply(400, `{"message":"bad"}`), true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFake(t, c.reply)
			cl := f.client()
			_, err := cl.BulkLoad(context.Background(), BulkParams{IntegrationID: "int-1", Format: "json"}, []byte(`[{"a":1}]`))
			require.Error(t, err)
			assert.Equal(t, c.sent, upstream.RequestSent(err), "%v", err)
			assert.Equal(t, c.unknown, upstream.OutcomeUnknown(err), "%v", err)

			_, err = cl.GetExternalID(context.Background(), "obj-1")
			require.Error(t, err)
			assert.False(t, upstream.RequestSent(err), "a read is never a sent write: %v", err)
		})
	}

	t.Run("never sent: the token endpoint failed", func(t *testing.T) {
		f := newFake(t, reply(200, `{}`))
		f.tokenReply = func(w http.ResponseWriter) { writeJSON(w, 500, `{"error":"server_error"}`) }
		_, err := f.client().BulkLoad(context.Background(), BulkParams{IntegrationID: "int-1", Format: "json"}, []byte(`[{"a":1}]`))
		require.Error(t, err)
		assert.False(t, upstream.RequestSent(err), "%v", err)
		assert.Empty(t, f.apiRequests())
	})
	t.Run("never sent: no connection", func(t *testing.T) {
		gone := httptest.NewServer(http.NotFoundHandler())
		u := gone.URL
		gone.Close()
		cl := New(Config{BaseURL: u, HostName: testHost, AppUserID: testUser, AppUserSecret: testSecret})
		_, err := cl.BulkLoad(context.Background(), BulkParams{IntegrationID: "int-1", Format: "json"}, []byte(`[{"a":1}]`))
		require.Error(t, err)
		assert.False(t, upstream.RequestSent(err), "%v", err)
	})
}

// creates are the client's calls that create something upstream, each
// made once against the fake.
var creates = []struct {
	name string
	// noID is the 2xx body of a reply that does not name what was created
	// ("" when the reply names nothing anyway).
	noID string
	call func(c *Client) error
}{
	{"BulkLoad", `{"integration_id":"int-1"}`, func(c *Client) error {
		_, err := c.BulkLoad(context.Background(), BulkParams{IntegrationID: "int-1", Format: "json"}, []byte(`[{"a":1}]`))
		return err
	}},
	{"BulkLoadOpportunities", `{"execution_id":""}`, func(c *Client) error {
		_, err := c.BulkLoadOpportunities(context.Background(), BulkParams{IntegrationID: "int-1"}, []byte("name\nA\n"))
		return err
	}},
	{"BulkLoadFile", `null`, func(c *Client) error {
		_, err := c.BulkLoadFile(context.Background(), BulkParams{IntegrationID: "int-1"}, "a.csv", []byte("name\nA\n"))
		return err
	}},
	{"BulkLoadOpportunitiesFile", `{}`, func(c *Client) error {
		_, err := c.BulkLoadOpportunitiesFile(context.Background(), BulkParams{IntegrationID: "int-1"}, "a.csv", []byte("name\nA\n"))
		return err
	}},
	{"Subscribe", `{"name":"n"}`, func(c *Client) error {
		_, err := c.Subscribe(context.Background(), SubscriberInput{Event: "object.all", Name: "n", WebhookSettings: WebhookSettings{CallbackURL: "https://x.test/cb"}})
		return err
	}},
	{"AddAudit", "", func(c *Client) error {
		_, err := c.AddAudit(context.Background(), "obj-1", AuditInput{StatusCode: "LINKED", Message: "m"})
		return err
	}},
}

// dropAfterRequest reads the whole request, then closes the connection
// without a reply.
func dropAfterRequest(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	_ = conn.Close()
}

// timeoutAfterSending sends the request, then loses the reply to a timeout,
// as a client whose deadline passed while it waited for the answer.
type timeoutAfterSending struct{ base http.RoundTripper }

func (t timeoutAfterSending) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	upstream.Discard(resp)
	return nil, &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
}

// Every create the client makes is marked outcome unknown once it may have
// reached WorkSpan without a trustworthy answer: a 2xx whose body is not
// JSON, is empty or names nothing created, a 5xx, a connection dropped or a
// timeout after the request went out. A 4xx is a refusal. Each is sent
// exactly once.
func TestCreatesWithUnknownOutcomeAreMarked(t *testing.T) {
	cases := []struct {
		name      string
		reply     http.HandlerFunc
		transport func(http.RoundTripper) http.RoundTripper
		unknown   bool
	}{
		{name: "2xx with garbage", reply: reply(200, `{"execution_id":"e1","subscriber_id":`), unknown: true},
		{name: "2xx with html", reply: reply(200, `<html>ok</html>`), unknown: true},
		{name: "2xx with an empty body", reply: func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) }, unknown: true},
		{name: "2xx naming nothing created", unknown: true},
		{name: "502 from a gateway", reply: reply(502, `<html>502 Bad Gateway</html>`), unknown: true},
		{name: "connection dropped after the request", reply: dropAfterRequest, unknown: true},
		{name: "timeout after the request", reply: reply(200, `{"execution_id":"e1","subscriber_id":"s1","object_id":"obj-1"}`),
			transport: func(base http.RoundTripper) http.RoundTripper { return timeoutAfterSending{base} }, unknown: true},
		{name: "400", reply: reply(400, `{"message":"bad"}`), unknown: false},
		{name: "429", reply: reply(429, `{"message":"slow down"}`), unknown: false},
	}
	for _, op := range creates {
		for _, c := range cases {
			if c.reply == nil && op.noID == "" {
				continue
			}
			t.Run(op.name+"/"+c.name, func(t *testing.T) {
				h := c.reply
				if h == nil {
					h = reply(200, op.noID)
				}
				f := newFake(t, h)
				cl := f.client(func(cfg *Config) {
					if c.transport != nil {
						cfg.HTTPClient = &http.Client{Transport: c.transport(http.DefaultTransport)}
					}
				})
				err := op.call(cl)
				require.Error(t, err)
				assert.True(t, upstream.RequestSent(err), "%v", err)
				assert.Equal(t, c.unknown, upstream.OutcomeUnknown(err), "%v", err)
				assert.Len(t, f.apiRequests(), 1, "sent exactly once")
			})
		}
	}
}

// The report endpoints are POSTs that only read: their failures are never
// taken for a change that may have been applied.
func TestReportReadsAreNotSentWrites(t *testing.T) {
	for _, c := range []struct {
		name      string
		reply     http.HandlerFunc
		transport func(http.RoundTripper) http.RoundTripper
	}{
		{name: "2xx with garbage", reply: reply(200, `{"results":`)},
		{name: "503", reply: reply(503, `{"message":"down"}`)},
		{name: "connection dropped", reply: dropAfterRequest},
		{name: "timeout", reply: reply(200, `{}`), transport: func(base http.RoundTripper) http.RoundTripper { return timeoutAfterSending{base} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFake(t, c.reply)
			cl := f.client(func(cfg *Config) {
				if c.transport != nil {
					cfg.HTTPClient = &http.Client{Transport: c.transport(http.DefaultTransport)}
				}
			})
			_, err := cl.ListReports(context.Background(), 0, 10)
			require.Error(t, err)
			assert.False(t, upstream.RequestSent(err), "list: %v", err)
			_, err = cl.ReadReport(context.Background(), 7, ReportQuery{})
			require.Error(t, err)
			assert.False(t, upstream.RequestSent(err), "data: %v", err)
		})
	}
}
