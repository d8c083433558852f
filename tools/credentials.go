package tools

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync"
)

type credentialKey struct{ connector string }

// WithCredential attaches a caller's own credential for a connector (HTTP
// mode, from request headers) to the request context.
func WithCredential(ctx context.Context, connector, secret string) context.Context {
	if secret == "" {
		return ctx
	}
	return context.WithValue(ctx, credentialKey{connector}, secret)
}

// Credential returns the caller's own credential for a connector, if any.
func Credential(ctx context.Context, connector string) string {
	s, _ := ctx.Value(credentialKey{connector}).(string)
	return s
}

// ConnectionName names the connection of a credential without revealing
// it: "pipedrive" for the server's own, "pipedrive:<hash prefix>" for a
// caller's.
func ConnectionName(connector, secret string) string {
	if secret == "" {
		return connector
	}
	sum := sha256.Sum256([]byte(connector + "\x00" + secret))
	return connector + ":" + hex.EncodeToString(sum[:6])
}

// maxPooled bounds how many per-caller connections one pool keeps.
const maxPooled = 1000

// Pool keeps one client per caller credential, created on first use; the
// server's own client serves callers without one.
type Pool[C any] struct {
	connector string
	fallback  C
	make      func(connection, secret string) C

	mu      sync.Mutex
	clients map[string]C
}

// NewPool returns a pool whose default client is fallback and whose
// per-credential clients come from make (given the connection name, for
// its budget, and the secret).
func NewPool[C any](connector string, fallback C, make func(connection, secret string) C) *Pool[C] {
	return &Pool[C]{connector: connector, fallback: fallback, make: make, clients: map[string]C{}}
}

// For returns the client of the caller's credential, or the default one.
func (p *Pool[C]) For(ctx context.Context) C {
	secret := Credential(ctx, p.connector)
	if secret == "" || p.make == nil {
		return p.fallback
	}
	name := ConnectionName(p.connector, secret)
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[name]; ok {
		return c
	}
	if len(p.clients) >= maxPooled {
		clear(p.clients)
	}
	c := p.make(name, secret)
	p.clients[name] = c
	return c
}

// PerClient keeps one value (typically a cache) per client, created on
// first use, so callers with their own credentials never share it.
type PerClient[C comparable, V any] struct {
	make func(C) V

	mu sync.Mutex
	m  map[C]V
}

// NewPerClient returns an empty PerClient whose values come from make.
func NewPerClient[C comparable, V any](make func(C) V) *PerClient[C, V] {
	return &PerClient[C, V]{make: make, m: map[C]V{}}
}

// Get returns the value of client c.
func (p *PerClient[C, V]) Get(c C) V {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.m[c]
	if !ok {
		if len(p.m) >= maxPooled {
			clear(p.m)
		}
		v = p.make(c)
		p.m[c] = v
	}
	return v
}
