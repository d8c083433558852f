package throttle

import (
	"slices"
	"strings"
	"sync"
)

// Registry holds one Budget per connection, all made with the same Config.
// It is safe for concurrent use.
type Registry struct {
	cfg     Config
	mu      sync.Mutex
	budgets map[string]*Budget
}

// NewRegistry returns an empty registry whose budgets use cfg.
func NewRegistry(cfg Config) *Registry {
	return &Registry{cfg: cfg.withDefaults(), budgets: map[string]*Budget{}}
}

// Budget returns the budget of the named connection, creating it on first use.
func (r *Registry) Budget(connection string) *Budget {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.budgets[connection]
	if !ok {
		b = New(connection, r.cfg)
		r.budgets[connection] = b
	}
	return b
}

// Statuses returns a snapshot of every budget, sorted by connection name.
func (r *Registry) Statuses() []Status {
	r.mu.Lock()
	budgets := make([]*Budget, 0, len(r.budgets))
	for _, b := range r.budgets {
		budgets = append(budgets, b)
	}
	r.mu.Unlock()
	out := make([]Status, 0, len(budgets))
	for _, b := range budgets {
		out = append(out, b.Status())
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Connection, b.Connection) })
	return out
}
