package httpx

import (
	"net/http"
	"time"

	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
)

// Chain returns the transport chain for one connection:
// RetryTransport{ThrottleTransport{base, budget}}, so every attempt spends
// budget. Waits between retries use the budget's clock. A nil base means
// http.DefaultTransport; a nil budget means unlimited.
func Chain(budget *throttle.Budget, base http.RoundTripper) http.RoundTripper {
	return ChainObserved(budget, base, nil)
}

// ChainObserved is Chain with an observer of every request that leaves
// (for metrics).
func ChainObserved(budget *throttle.Budget, base http.RoundTripper, observe func(status int, waited time.Duration)) http.RoundTripper {
	return &RetryTransport{
		Base:  &ThrottleTransport{Base: base, Budget: budget, Observe: observe},
		Clock: budget.Clock(),
	}
}

// NewClient returns an HTTP client that sends through Chain(budget, nil).
// The timeout bounds each call as a whole, waiting for budget and retries
// included; 0 means none.
func NewClient(budget *throttle.Budget, timeout time.Duration) *http.Client {
	return &http.Client{Transport: Chain(budget, nil), Timeout: timeout}
}
