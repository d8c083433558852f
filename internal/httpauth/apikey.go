package httpauth

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

const hashPrefix = "sha256:"

// constantTimeEqual is the comparison used for key digests; a variable so
// tests can verify it is used for every stored key.
var constantTimeEqual = subtle.ConstantTimeCompare

// HashKey returns the storable form of an API key: "sha256:<lowercase hex>".
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hashPrefix + hex.EncodeToString(sum[:])
}

// parseHash decodes "sha256:<64 hex digits>" (hex case-insensitive).
func parseHash(s string) ([sha256.Size]byte, error) {
	var d [sha256.Size]byte
	hexPart, ok := strings.CutPrefix(s, hashPrefix)
	if !ok {
		return d, errors.New(`hash must start with "sha256:"`)
	}
	if len(hexPart) != 2*sha256.Size {
		return d, fmt.Errorf("hash must have %d hex digits", 2*sha256.Size)
	}
	if _, err := hex.Decode(d[:], []byte(hexPart)); err != nil {
		return d, errors.New("hash is not valid hex")
	}
	return d, nil
}

type apiKeyEntry struct {
	digest  [sha256.Size]byte
	subject string
}

type apiKeys struct {
	entries []apiKeyEntry
}

// NewAPIKeys returns an Authenticator for static API keys. hashed maps a
// key hash (as produced by HashKey) to the subject name reported in the
// Principal. Malformed hashes, duplicate hashes and empty subjects are
// rejected, as is an empty map.
func NewAPIKeys(hashed map[string]string) (Authenticator, error) {
	if len(hashed) == 0 {
		return nil, errors.New("httpauth: no API keys configured")
	}
	a := &apiKeys{entries: make([]apiKeyEntry, 0, len(hashed))}
	seen := make(map[[sha256.Size]byte]bool, len(hashed))
	for h, subject := range hashed {
		d, err := parseHash(h)
		if err != nil {
			return nil, fmt.Errorf("httpauth: API key for %q: %w", subject, err)
		}
		if strings.TrimSpace(subject) == "" {
			return nil, errors.New("httpauth: API key with empty subject name")
		}
		if seen[d] {
			return nil, fmt.Errorf("httpauth: duplicate API key hash for %q", subject)
		}
		seen[d] = true
		a.entries = append(a.entries, apiKeyEntry{digest: d, subject: subject})
	}
	return a, nil
}

// Authenticate hashes the presented key and compares it against every
// stored digest in constant time, without stopping at the first match.
func (a *apiKeys) Authenticate(r *http.Request) (Principal, error) {
	tok, err := bearerToken(r)
	if err != nil {
		return Principal{}, err
	}
	sum := sha256.Sum256([]byte(tok))
	match := -1
	for i := range a.entries {
		if constantTimeEqual(sum[:], a.entries[i].digest[:]) == 1 && match < 0 {
			match = i
		}
	}
	if match < 0 {
		return Principal{}, notApplicable("invalid API key")
	}
	return Principal{Subject: a.entries[match].subject, Method: MethodAPIKey}, nil
}

// ParseAPIKeyFile reads an API key file and returns hash → name, suitable
// for NewAPIKeys. Each non-blank line is "<name> sha256:<hex>"; lines whose
// first non-space character is '#' are comments. Errors name the line
// number but never echo line content.
func ParseAPIKeyFile(r io.Reader) (map[string]string, error) {
	out := make(map[string]string)
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("httpauth: API key file line %d: want \"<name> sha256:<hex>\"", n)
		}
		name, h := fields[0], strings.ToLower(fields[1])
		if _, err := parseHash(h); err != nil {
			return nil, fmt.Errorf("httpauth: API key file line %d: %w", n, err)
		}
		if prev, dup := out[h]; dup {
			return nil, fmt.Errorf("httpauth: API key file line %d: hash already used by %q", n, prev)
		}
		out[h] = name
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("httpauth: reading API key file: %w", err)
	}
	return out, nil
}
