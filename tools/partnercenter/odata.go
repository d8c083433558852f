package partnercenter

import (
	"strings"
	"time"
)

// filterBuilder compiles convenience arguments into one valid OData $filter.
type filterBuilder struct{ clauses []string }

// quote renders an OData string literal (” escapes a quote).
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func (f *filterBuilder) eq(field, v string) {
	if v != "" {
		f.clauses = append(f.clauses, field+" eq "+quote(v))
	}
}

func (f *filterBuilder) contains(field, v string) {
	if v != "" {
		f.clauses = append(f.clauses, "contains("+field+","+quote(v)+")")
	}
}

func (f *filterBuilder) since(field string, t time.Time) {
	if !t.IsZero() {
		f.clauses = append(f.clauses, field+" ge "+t.UTC().Format(time.RFC3339))
	}
}

// raw adds a caller-written expression, parenthesised so it composes.
func (f *filterBuilder) raw(expr string) {
	if expr = strings.TrimSpace(expr); expr != "" {
		f.clauses = append(f.clauses, "("+expr+")")
	}
}

func (f *filterBuilder) String() string { return strings.Join(f.clauses, " and ") }
