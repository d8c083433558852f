package httpx

import (
	"net/http"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
)

// Options configure a connection's transport chain (ChainWith).
type Options struct {
	// MaxPause caps every pause an upstream signal (429 Retry-After,
	// Pipedrive's x-ratelimit-reset) imposes on the connection and every
	// Retry-After wait between retries. 0 means one window of the budget
	// (budget.Config().Window, 60 s by default); see MaxPauseOf.
	MaxPause time.Duration
	// Observe, when set, learns of every request that leaves (for
	// metrics): its status (0 without a reply) and how long it waited for
	// budget.
	Observe func(status int, waited time.Duration)
	// Tracer, when set, records every request that leaves as a span
	// (TracedTransport, under the budget). Nil: no tracing, at no cost.
	Tracer trace.Tracer
}

// Chain returns the transport chain for one connection:
// RetryTransport{ThrottleTransport{base, budget}}, so every attempt spends
// budget. Waits between retries use the budget's clock. A nil base means
// http.DefaultTransport; a nil budget means unlimited.
func Chain(budget *throttle.Budget, base http.RoundTripper) http.RoundTripper {
	return ChainWith(budget, base, Options{})
}

// ChainObserved is Chain with an observer of every request that leaves
// (for metrics).
func ChainObserved(budget *throttle.Budget, base http.RoundTripper, observe func(status int, waited time.Duration)) http.RoundTripper {
	return ChainWith(budget, base, Options{Observe: observe})
}

// ChainWith is Chain configured by opts: with opts.Tracer,
// RetryTransport{ThrottleTransport{TracedTransport{base}, budget}}.
func ChainWith(budget *throttle.Budget, base http.RoundTripper, opts Options) http.RoundTripper {
	maxPause := MaxPauseOf(budget, opts.MaxPause)
	if opts.Tracer != nil {
		connection := ""
		if budget != nil {
			connection = budget.Name()
		}
		base = Traced(base, opts.Tracer, connection)
	}
	return &RetryTransport{
		Base:     &ThrottleTransport{Base: base, Budget: budget, Observe: opts.Observe, MaxPause: maxPause},
		Clock:    budget.Clock(),
		MaxPause: maxPause,
	}
}

// NewClient returns an HTTP client that sends through Chain(budget, nil).
// The timeout bounds each call as a whole, waiting for budget and retries
// included; 0 means none.
func NewClient(budget *throttle.Budget, timeout time.Duration) *http.Client {
	return &http.Client{Transport: Chain(budget, nil), Timeout: timeout}
}
