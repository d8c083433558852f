// Package sealed encrypts secrets kept at rest (a caller's upstream
// credential stored with its trigger) with the server's state key, using
// AES-256-GCM. A sealed value is bound to a context string (for example the
// trigger it belongs to), so it cannot be moved to another record.
package sealed

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the length of a state key: 32 bytes (AES-256).
const KeySize = 32

// version prefixes every sealed value, so the format can change later.
const version = 1

// ErrOpen is returned when a sealed value cannot be opened: another key,
// another context, or altered bytes.
var ErrOpen = errors.New("sealed: cannot open: wrong key, wrong record or altered data")

// Box seals and opens values with one key.
type Box struct{ aead cipher.AEAD }

// ParseKey reads a state key given as base64 (standard or URL alphabet,
// padded or not) or hex of exactly 32 bytes, e.g. from `openssl rand -base64 32`.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, dec := range []func(string) ([]byte, error){
		hex.DecodeString, base64.StdEncoding.DecodeString, base64.RawStdEncoding.DecodeString,
		base64.URLEncoding.DecodeString, base64.RawURLEncoding.DecodeString,
	} {
		if k, err := dec(s); err == nil && len(k) == KeySize {
			return k, nil
		}
	}
	return nil, fmt.Errorf("the state key must be %d random bytes as base64 or hex (e.g. the output of `openssl rand -base64 32`)", KeySize)
}

// New returns a Box for a 32-byte key.
func New(key []byte) (*Box, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("sealed: key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Box{aead: aead}, nil
}

// Seal encrypts plaintext bound to context: version byte, random nonce,
// ciphertext and tag.
func (b *Box) Seal(plaintext []byte, context string) []byte {
	nonce := make([]byte, b.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		panic(err)
	}
	out := append([]byte{version}, nonce...)
	return b.aead.Seal(out, nonce, plaintext, []byte(context))
}

// Open decrypts a value sealed for the same context.
func (b *Box) Open(sealed []byte, context string) ([]byte, error) {
	n := b.aead.NonceSize()
	if len(sealed) < 1+n+b.aead.Overhead() || sealed[0] != version {
		return nil, ErrOpen
	}
	pt, err := b.aead.Open(nil, sealed[1:1+n], sealed[1+n:], []byte(context))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}
