package sealed

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSealOpen(t *testing.T) {
	key := bytes.Repeat([]byte{7}, KeySize)
	b, err := New(key)
	require.NoError(t, err)
	secret := []byte("pipedrive-token-of-alice")
	s := b.Seal(secret, "trigger-1")
	assert.NotContains(t, string(s), string(secret), "nothing of the secret is readable at rest")
	got, err := b.Open(s, "trigger-1")
	require.NoError(t, err)
	assert.Equal(t, secret, got)
	assert.NotEqual(t, s, b.Seal(secret, "trigger-1"), "a fresh nonce every time")

	_, err = b.Open(s, "trigger-2")
	assert.ErrorIs(t, err, ErrOpen, "bound to its record")
	other, _ := New(bytes.Repeat([]byte{8}, KeySize))
	_, err = other.Open(s, "trigger-1")
	assert.ErrorIs(t, err, ErrOpen, "another key cannot open it")
	s[len(s)-1] ^= 1
	_, err = b.Open(s, "trigger-1")
	assert.ErrorIs(t, err, ErrOpen, "altered bytes are refused")
	_, err = b.Open([]byte{1, 2}, "trigger-1")
	assert.ErrorIs(t, err, ErrOpen)
}

func TestParseKey(t *testing.T) {
	raw := bytes.Repeat([]byte{0xab}, KeySize)
	for _, s := range []string{base64.StdEncoding.EncodeToString(raw), base64.RawURLEncoding.EncodeToString(raw), hex.EncodeToString(raw), " " + hex.EncodeToString(raw) + "\n"} {
		k, err := ParseKey(s)
		require.NoError(t, err, s)
		assert.Equal(t, raw, k)
	}
	for _, s := range []string{"", "short", base64.StdEncoding.EncodeToString(raw[:16]), "correct horse battery staple correct horse"} {
		_, err := ParseKey(s)
		assert.Error(t, err, s)
	}
	_, err := New(raw[:10])
	assert.Error(t, err)
}
