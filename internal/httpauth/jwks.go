package httpauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/cosell-mcp/cosell-mcp/internal/clock"
)

// jwksMaxAge is how long a fetched key set is used before it is refreshed
// (subject to the same rate limit); on failure the old set stays in use.
const jwksMaxAge = time.Hour

// minRSABits is the smallest accepted RSA modulus.
const minRSABits = 2048

type publicKey struct {
	alg string // the JWK "alg" member, if any
	key any    // *rsa.PublicKey or *ecdsa.PublicKey
}

// jwks is a cached JSON Web Key Set.
type jwks struct {
	url    string
	client *http.Client
	clock  clock.Clock

	fetchMu sync.Mutex // serialises fetches

	mu          sync.Mutex // guards the fields below
	keys        map[string]publicKey
	fetchedAt   time.Time
	lastAttempt time.Time
	lastErr     error
	fetches     int
}

func newJWKS(url string, client *http.Client, c clock.Clock) *jwks {
	return &jwks{url: url, client: client, clock: c}
}

func (s *jwks) lookup(kid string) (publicKey, bool, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	stale := s.keys == nil || s.clock.Now().Sub(s.fetchedAt) > jwksMaxAge
	if kid == "" {
		// Without a key id the key is unambiguous only in a one-key set.
		if len(s.keys) == 1 {
			for _, k := range s.keys {
				return k, true, stale
			}
		}
		return publicKey{}, false, stale
	}
	k, ok := s.keys[kid]
	return k, ok, stale
}

// key returns the verification key for kid, refetching the set (rate
// limited) when kid is unknown or the cache is stale.
func (s *jwks) key(ctx context.Context, kid, alg string) (any, error) {
	k, ok, stale := s.lookup(kid)
	if !ok || stale {
		s.refresh(ctx)
		k, ok, _ = s.lookup(kid)
	}
	if !ok {
		s.mu.Lock()
		err := s.lastErr
		s.mu.Unlock()
		return nil, reject("unknown signing key", err)
	}
	if err := compatible(k, alg); err != nil {
		return nil, reject("signing key does not match algorithm", err)
	}
	return k.key, nil
}

// refresh fetches the key set unless a fetch was attempted within
// jwksRefetchInterval.
func (s *jwks) refresh(ctx context.Context) {
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()

	s.mu.Lock()
	now := s.clock.Now()
	if !s.lastAttempt.IsZero() && now.Sub(s.lastAttempt) < jwksRefetchInterval {
		s.mu.Unlock()
		return
	}
	s.lastAttempt = now
	s.fetches++
	s.mu.Unlock()

	keys, err := s.fetch(ctx)

	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.lastErr = err
		return
	}
	s.keys, s.fetchedAt, s.lastErr = keys, now, nil
}

func (s *jwks) fetch(ctx context.Context) (map[string]publicKey, error) {
	ctx, cancel := context.WithTimeout(ctx, jwksFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jwks: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jwks: unexpected status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, jwksMaxBody+1))
	if err != nil {
		return nil, fmt.Errorf("jwks: reading body: %w", err)
	}
	if len(body) > jwksMaxBody {
		return nil, fmt.Errorf("jwks: body exceeds %d bytes", jwksMaxBody)
	}
	return parseJWKS(body)
}

type jsonWebKey struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS decodes a key set, keeping the usable signature keys. Keys of
// other types or uses, or that fail to decode, are skipped; a set with no
// usable key is an error.
func parseJWKS(body []byte) (map[string]publicKey, error) {
	var set struct {
		Keys []jsonWebKey `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("jwks: decoding: %w", err)
	}
	keys := make(map[string]publicKey, len(set.Keys))
	for _, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		var pub any
		var err error
		switch k.Kty {
		case "RSA":
			pub, err = rsaKey(k)
		case "EC":
			pub, err = ecKey(k)
		default:
			continue
		}
		if err != nil {
			continue
		}
		if _, dup := keys[k.Kid]; dup {
			continue
		}
		keys[k.Kid] = publicKey{alg: k.Alg, key: pub}
	}
	if len(keys) == 0 {
		return nil, errors.New("jwks: no usable signing keys")
	}
	return keys, nil
}

func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

func rsaKey(k jsonWebKey) (*rsa.PublicKey, error) {
	nb, err := b64(k.N)
	if err != nil {
		return nil, err
	}
	eb, err := b64(k.E)
	if err != nil {
		return nil, err
	}
	n := new(big.Int).SetBytes(nb)
	e := new(big.Int).SetBytes(eb)
	if n.BitLen() < minRSABits {
		return nil, errors.New("RSA modulus too small")
	}
	if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
		return nil, errors.New("invalid RSA exponent")
	}
	return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
}

func ecKey(k jsonWebKey) (*ecdsa.PublicKey, error) {
	var curve elliptic.Curve
	switch k.Crv {
	case "P-256":
		curve = elliptic.P256()
	case "P-384":
		curve = elliptic.P384()
	default:
		return nil, errors.New("unsupported curve")
	}
	size := (curve.Params().BitSize + 7) / 8
	x, err := b64(k.X)
	if err != nil {
		return nil, err
	}
	y, err := b64(k.Y)
	if err != nil {
		return nil, err
	}
	if len(x) != size || len(y) != size {
		return nil, errors.New("invalid EC coordinate length")
	}
	point := make([]byte, 0, 1+2*size)
	point = append(point, 4)
	point = append(point, x...)
	point = append(point, y...)
	return ecdsa.ParseUncompressedPublicKey(curve, point)
}

// compatible reports whether key k may verify a token signed with alg.
func compatible(k publicKey, alg string) error {
	if k.alg != "" && k.alg != alg {
		return fmt.Errorf("key is for %s, token uses %s", k.alg, alg)
	}
	switch pub := k.key.(type) {
	case *rsa.PublicKey:
		if strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS") {
			return nil
		}
	case *ecdsa.PublicKey:
		want := map[string]int{"ES256": 256, "ES384": 384}[alg]
		if want != 0 && pub.Curve.Params().BitSize == want {
			return nil
		}
	}
	return fmt.Errorf("key type does not support %s", alg)
}
