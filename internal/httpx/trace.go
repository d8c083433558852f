package httpx

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Attribute keys of an upstream request's span beyond the HTTP semantic
// conventions.
const (
	// ConnectionKey names the connection whose budget the request spent
	// (connector, or connector and a hash of the caller's credential).
	ConnectionKey = attribute.Key("cosell.connection")
	// RequestIDKey is the upstream's id of the request: its Request-ID or
	// X-Request-Id reply header, else the MS-RequestId sent or echoed.
	RequestIDKey = attribute.Key("cosell.upstream.request_id")
	// CorrelationIDKey is the MS-CorrelationId sent or echoed.
	CorrelationIDKey = attribute.Key("cosell.upstream.correlation_id")
)

// maxIDLength caps an id taken from a reply header.
const maxIDLength = 128

// TracedTransport records every request it sends as an OpenTelemetry client
// span, "<METHOD> <path template>", from the moment it is handed to Base
// until its response headers arrive (or the attempt fails): the method, the
// host and port, the path with its ids replaced by {id} (PathTemplate), the
// connection, the status, http.request.resend_count for a retry
// (RetryTransport's attempt), and the upstream's request and correlation
// ids when present. The query string, headers and bodies — where API tokens,
// secrets and argument values travel — are never recorded.
//
// It sends no trace context upstream: the upstreams are third-party APIs,
// which have no part in our traces, so no traceparent or tracestate header
// is added (one would only disclose our trace ids to them).
//
// ChainWith places it under the ThrottleTransport, so the span measures the
// exchange itself and a wait for budget is a span of its own (see
// throttle.Config.OnWait).
type TracedTransport struct {
	// Base sends the request; nil means http.DefaultTransport.
	Base http.RoundTripper
	// Tracer starts the spans.
	Tracer trace.Tracer
	// Connection is recorded as ConnectionKey when not empty.
	Connection string
}

// Traced returns base wrapped in a TracedTransport, or base itself when
// tracer is nil (tracing off).
func Traced(base http.RoundTripper, tracer trace.Tracer, connection string) http.RoundTripper {
	if tracer == nil {
		return base
	}
	return &TracedTransport{Base: base, Tracer: tracer, Connection: connection}
}

// RoundTrip implements http.RoundTripper.
func (t *TracedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	tmpl := PathTemplate(req.URL.EscapedPath())
	attrs := make([]attribute.KeyValue, 0, 9)
	attrs = append(attrs, semconv.HTTPRequestMethodKey.String(req.Method), semconv.URLScheme(req.URL.Scheme),
		semconv.ServerAddress(req.URL.Hostname()), semconv.URLTemplate(tmpl))
	if p := req.URL.Port(); p != "" {
		if n, err := strconv.Atoi(p); err == nil {
			attrs = append(attrs, semconv.ServerPort(n))
		}
	}
	if t.Connection != "" {
		attrs = append(attrs, ConnectionKey.String(t.Connection))
	}
	if n := attemptOf(req.Context()); n > 0 {
		attrs = append(attrs, semconv.HTTPRequestResendCount(n))
	}
	_, span := t.Tracer.Start(req.Context(), req.Method+" "+tmpl,
		trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
	defer span.End()

	resp, err := base(t.Base).RoundTrip(req)
	var h http.Header
	if resp != nil {
		h = resp.Header
	}
	if id := firstHeader(h, req.Header, "Request-ID", "X-Request-Id", "MS-RequestId"); id != "" {
		span.SetAttributes(RequestIDKey.String(id))
	}
	if id := firstHeader(h, req.Header, "MS-CorrelationId"); id != "" {
		span.SetAttributes(CorrelationIDKey.String(id))
	}
	if err != nil {
		kind := "transport"
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			kind = "timeout"
		case errors.Is(err, context.Canceled):
			kind = "canceled"
		}
		span.SetAttributes(semconv.ErrorTypeKey.String(kind))
		span.SetStatus(codes.Error, kind)
		return nil, err
	}
	span.SetAttributes(semconv.HTTPResponseStatusCode(resp.StatusCode))
	if resp.StatusCode >= 400 {
		code := strconv.Itoa(resp.StatusCode)
		span.SetAttributes(semconv.ErrorTypeKey.String(code))
		span.SetStatus(codes.Error, code)
	}
	return resp, nil
}

// firstHeader returns the first of names present in the reply's headers,
// else in the request's (ids the client sent are echoed by the upstream,
// or not), cut to maxIDLength.
func firstHeader(reply, sent http.Header, names ...string) string {
	for _, h := range []http.Header{reply, sent} {
		for _, n := range names {
			if v := strings.TrimSpace(h.Get(n)); v != "" {
				return v[:min(len(v), maxIDLength)]
			}
		}
	}
	return ""
}

var (
	versionSegment = regexp.MustCompile(`^v[0-9]+(\.[0-9]+)*$`)
	wordSegment    = regexp.MustCompile(`^[a-z][a-zA-Z]*(_[a-z][a-zA-Z]*)*$`)
)

// PathTemplate returns an escaped URL path with every segment that is not a
// plain word (deals, dealFields, external_id, oauth2), nor a version
// (v2, v1.0), replaced by {id}: "/api/v2/deals/42" becomes
// "/api/v2/deals/{id}", and "/app/v1/object/WS-Project_x1/audit"
// "/app/v1/object/{id}/audit". Ids, GUIDs, tenant domains and anything
// percent-encoded thus stay out of span names and attributes.
func PathTemplate(path string) string {
	if path == "" || path == "/" {
		return "/"
	}
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if s != "" && s != "oauth2" && !versionSegment.MatchString(s) && !wordSegment.MatchString(s) {
			segs[i] = "{id}"
		}
	}
	return strings.Join(segs, "/")
}

type attemptKey struct{}

// withAttempt marks a retry's context with its attempt number (1 for the
// first retry), for TracedTransport's resend count.
func withAttempt(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, attemptKey{}, n)
}

func attemptOf(ctx context.Context) int {
	n, _ := ctx.Value(attemptKey{}).(int)
	return n
}
