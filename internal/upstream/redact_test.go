package upstream

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const secret = "s3cr/et+T0ken=\"x\"&y"

// encodings are the forms in which an upstream echoing a request writes a
// credential.
func encodings(s string) map[string]string {
	jsonEsc, _ := json.Marshal(s)
	var u strings.Builder
	for _, r := range s {
		fmt.Fprintf(&u, `\u%04x`, r)
	}
	var lower strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&lower, "%%%02x", s[i])
	}
	return map[string]string{
		"plain":              s,
		"query-escaped":      url.QueryEscape(s),
		"path-escaped":       url.PathEscape(s),
		"lower-case hex":     lower.String(),
		"JSON string":        string(jsonEsc[1 : len(jsonEsc)-1]),
		"JSON \\u escapes":   u.String(),
		"JSON-escaped slash": strings.ReplaceAll(strings.ReplaceAll(s, `"`, `\"`), "/", `\/`),
		"JSON of a query":    strings.ReplaceAll(url.QueryEscape(s), "%", `\u0025`),
	}
}

// issue finding 7: secrets echoed — a credential is found in every encoding.
func TestRedactorFindsEveryEncoding(t *testing.T) {
	r := NewRedactor(secret)
	for name, enc := range encodings(secret) {
		text := `{"error":"invalid token ` + enc + ` given","n":1}`
		out := r.Redact(text)
		assert.NotContains(t, out, enc, name)
		assert.Contains(t, out, Redacted, name)
		assert.Contains(t, out, `"n":1`, name)
	}
	assert.Equal(t, "nothing here", r.Redact("nothing here"))
	assert.Equal(t, "a %zz b \\q", r.Redact("a %zz b \\q"))
}

func TestRedactorSecretsAreDynamicAndLinked(t *testing.T) {
	src := NewRedactor("client-secret-1")
	r := NewRedactor()
	r.Link(src)
	src.AddRecent("access-token-1")
	r.AddRecent("tiny")
	r.Add("abc") // too short: ignored
	out := r.Redact("client-secret-1 access-token-1 tiny abc")
	assert.Equal(t, "[redacted] [redacted] [redacted] abc", out)
	for i := range 40 {
		r.AddRecent(fmt.Sprintf("token-%03d", i))
	}
	assert.Equal(t, "token-000", r.Redact("token-000"), "old short-lived tokens are forgotten")
	assert.Equal(t, Redacted, r.Redact("token-039"))
	assert.Equal(t, Redacted, r.Redact("client-secret-1"), "long-lived ones never are")

	var nilR *Redactor
	assert.Equal(t, "x", nilR.Redact("x"))
	nilR.RedactValue(&struct{ A string }{"x"})
}

func TestRedactorLongestFirst(t *testing.T) {
	r := NewRedactor("abcd", "abcdefgh")
	assert.Equal(t, "[redacted]!", r.Redact("abcdefgh!"))
}

func TestRedactError(t *testing.T) {
	r := NewRedactor(secret)
	inner := &Error{Status: 400}
	err := fmt.Errorf("call with %s: %w", url.QueryEscape(secret), inner)
	red := r.RedactError(err)
	assert.NotContains(t, red.Error(), url.QueryEscape(secret))
	var ue *Error
	assert.True(t, errors.As(red, &ue), "the chain is kept")
	clean := errors.New("fine")
	assert.Same(t, clean, r.RedactError(clean))
}

type nested struct {
	Name   string
	Tags   []string
	Ptr    *string
	Map    map[string]string
	Any    any
	Raw    json.RawMessage
	Num    json.Number
	Inner  struct{ Note string }
	Rows   []map[string]any
	hidden string
}

// issue finding 7: secrets echoed — a decoded reply keeps no credential,
// wherever it hides.
func TestRedactValue(t *testing.T) {
	r := NewRedactor("tok-12345")
	p := "x tok-12345"
	v := nested{
		Name: "tok-12345", Tags: []string{"a", "tok%2D12345"}, Ptr: &p,
		Map: map[string]string{"tok-12345": "v", "k": "tok-12345"},
		Any: map[string]any{"deep": []any{"tok-12345", json.Number("12345")}},
		Raw: json.RawMessage(`{"a":"tok\u002d12345"}`), Num: "12345",
		Rows:   []map[string]any{{"c": "tok-12345"}},
		hidden: "tok-12345",
	}
	v.Inner.Note = "tok-12345"
	r.RedactValue(&v)
	raw, err := json.Marshal(v)
	require.NoError(t, err)
	assert.NotContains(t, string(raw), "tok-12345")
	assert.NotContains(t, string(raw), `tok\u002d12345`)
	assert.Contains(t, string(raw), `"Num":12345`, "numbers are left alone")
	assert.True(t, json.Valid(v.Raw))

	// A credential written as a JSON number: the raw value is replaced whole.
	num := NewRedactor("123456789")
	assert.Equal(t, `"[redacted]"`, string(num.RedactJSON([]byte(`123456789`))))
	assert.Equal(t, `{"a":"x"}`, string(num.RedactJSON([]byte(`{"a":"x"}`))))
}

func BenchmarkRedactLargeText(b *testing.B) {
	r := NewRedactor("eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.payload.signature", "client-secret-value", "api-token-0123456789")
	text := strings.Repeat(`{"title":"Deal \u00e9 50% off","id":12345,"note":"see https://x.test/a%20b"},`, 20000)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		_ = r.Redact(text)
	}
}
