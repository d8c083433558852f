package httpx

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
)

// recorder is a tracer whose ended spans can be read back.
func recorder(t *testing.T) (trace.Tracer, *tracetest.InMemoryExporter) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp.Tracer("test"), exp
}

func attrs(s tracetest.SpanStub) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes {
		m[kv.Key] = kv.Value
	}
	return m
}

func TestTracedChainRecordsEveryAttempt(t *testing.T) {
	u := newUpstream(t, status(503), status(200, "Request-ID", "req-2", "MS-CorrelationId", "corr-2"))
	tracer, exp := recorder(t)
	b, fc := fakeBudget(throttle.Config{Limit: 10})
	client := &http.Client{Transport: ChainWith(b, nil, Options{Tracer: tracer})}

	parent, span := tracer.Start(context.Background(), "tool")
	req, err := http.NewRequestWithContext(parent, http.MethodGet, u.URL+"/api/v2/deals/42?api_token=s3cret&term=Contoso", nil)
	require.NoError(t, err)
	req.Header.Set("x-api-token", "s3cret")
	r := drive(t, fc, do(client, req), 100*time.Millisecond)
	require.NoError(t, r.err)
	span.End()

	spans := exp.GetSpans()
	require.Len(t, spans, 3, "two attempts and the parent")
	host, port := hostPort(t, u.URL)
	for i, s := range spans[:2] {
		assert.Equal(t, "GET /api/v2/deals/{id}", s.Name)
		assert.Equal(t, trace.SpanKindClient, s.SpanKind)
		assert.Equal(t, span.SpanContext().SpanID(), s.Parent.SpanID(), "a child of the caller's span")
		a := attrs(s)
		assert.Equal(t, "GET", a["http.request.method"].AsString())
		assert.Equal(t, host, a["server.address"].AsString())
		assert.Equal(t, port, a["server.port"].AsInt64())
		assert.Equal(t, "/api/v2/deals/{id}", a["url.template"].AsString())
		assert.Equal(t, "pipedrive", a["cosell.connection"].AsString())
		if i == 0 {
			assert.Equal(t, int64(503), a["http.response.status_code"].AsInt64())
			assert.Equal(t, "503", a["error.type"].AsString())
			assert.Equal(t, codes.Error, s.Status.Code)
			_, resent := a["http.request.resend_count"]
			assert.False(t, resent, "the first attempt is no resend")
		} else {
			assert.Equal(t, int64(200), a["http.response.status_code"].AsInt64())
			assert.Equal(t, int64(1), a["http.request.resend_count"].AsInt64())
			assert.Equal(t, "req-2", a["cosell.upstream.request_id"].AsString())
			assert.Equal(t, "corr-2", a["cosell.upstream.correlation_id"].AsString())
			assert.Equal(t, codes.Unset, s.Status.Code)
		}
		for _, kv := range s.Attributes {
			assert.NotContains(t, kv.Value.String(), "s3cret", "%s", kv.Key)
			assert.NotContains(t, kv.Value.String(), "Contoso", "%s", kv.Key)
		}
	}
}

func TestTracedTransportSendsNoTraceContext(t *testing.T) {
	seen := make(chan http.Header, 1)
	tracer, _ := recorder(t)
	rt := Traced(roundTripFunc(func(r *http.Request) (*http.Response, error) {
		seen <- r.Header.Clone()
		return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	}), tracer, "")
	ctx, span := tracer.Start(context.Background(), "tool")
	defer span.End()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://api.pipedrive.com/api/v2/deals", nil)
	require.NoError(t, err)
	resp, err := rt.RoundTrip(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	h := <-seen
	assert.Empty(t, h.Get("traceparent"))
	assert.Empty(t, h.Get("tracestate"))
}

func TestTracedTransportRecordsTransportErrors(t *testing.T) {
	tracer, exp := recorder(t)
	rt := Traced(roundTripFunc(func(*http.Request) (*http.Response, error) {
		return nil, errors.New("dial tcp: connection refused")
	}), tracer, "workspan")
	req, err := http.NewRequest(http.MethodPost, "https://api.workspan.com/oauth/token?x-ws-env=app.workspan.com", strings.NewReader("client_secret=s3cret"))
	require.NoError(t, err)
	_, err = rt.RoundTrip(req)
	require.Error(t, err)
	spans := exp.GetSpans()
	require.Len(t, spans, 1)
	assert.Equal(t, "POST /oauth/token", spans[0].Name)
	assert.Equal(t, "transport", attrs(spans[0])["error.type"].AsString())
	assert.Equal(t, codes.Error, spans[0].Status.Code)
	assert.False(t, spans[0].Parent.IsValid(), "a request outside any trace is a trace of its own")
}

func TestTracedNilTracerIsTheBase(t *testing.T) {
	base := roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, nil })
	rt := Traced(base, nil, "pipedrive")
	_, wrapped := rt.(*TracedTransport)
	assert.False(t, wrapped)
	chain := ChainWith(nil, http.DefaultTransport, Options{}).(*RetryTransport)
	assert.Equal(t, http.DefaultTransport, chain.Base.(*ThrottleTransport).Base, "no tracer: nothing added to the chain")
}

func TestPathTemplate(t *testing.T) {
	for path, want := range map[string]string{
		"":                                "/",
		"/":                               "/",
		"/api/v2/deals/42":                "/api/v2/deals/{id}",
		"/api/v2/deals/search":            "/api/v2/deals/search",
		"/api/v2/dealFields":              "/api/v2/dealFields",
		"/v1/deals/9007199254740993/flow": "/v1/deals/{id}/flow",
		"/v1.0/engagements/referrals/7d4c2b9e-0c2a-4a1e-9f7e-3f5e2c1d0b6a": "/v1.0/engagements/referrals/{id}",
		"/app/v1/object/WS-Project_agpzfndzLW/external_id":                 "/app/v1/object/{id}/external_id",
		"/app/v1/object/WS-Project_a%2Fb/audit":                            "/app/v1/object/{id}/audit",
		"/bulk/v1/bulkload_opportunity":                                    "/bulk/v1/bulkload_opportunity",
		"/contoso.onmicrosoft.com/oauth2/v2.0/token":                       "/{id}/oauth2/v2.0/token",
		"/report/v1/77/data":                                               "/report/v1/{id}/data",
		"/event/v1/subscriber/sub%201":                                     "/event/v1/subscriber/{id}",
	} {
		assert.Equal(t, want, PathTemplate(path), path)
	}
}

func hostPort(t *testing.T, raw string) (string, int64) {
	u, err := url.Parse(raw)
	require.NoError(t, err)
	port, err := strconv.ParseInt(u.Port(), 10, 64)
	require.NoError(t, err)
	return u.Hostname(), port
}
