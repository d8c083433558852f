package upstream

import (
	"encoding/json"
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"
)

// Redacted replaces a credential wherever a reply carried it.
const Redacted = "[redacted]"

// MinSecretLen is the shortest credential a Redactor looks for: shorter
// strings would match ordinary text and no real credential is that short.
const MinSecretLen = 4

// maxRecent bounds the short-lived credentials (access tokens, rotated
// refresh tokens) a Redactor remembers besides its pinned ones.
const maxRecent = 16

// Redactor removes a connection's credentials (API token, access token,
// refresh token, client secret) from upstream text before it can reach an
// error, a result or a log. It finds each credential written plainly,
// percent-encoded (any case of hex digit, "+" for a space, per byte), with
// JSON escapes (\uXXXX, \/, \", \\) or any mix of these, as an upstream
// echoing a request (its query, its form body, its JSON) would write it.
//
// A nil *Redactor redacts nothing. It is safe for concurrent use.
type Redactor struct {
	mu     sync.RWMutex
	pinned []string
	recent []string // most recent last
	linked []*Redactor
}

// NewRedactor returns a Redactor of the given long-lived credentials.
func NewRedactor(secrets ...string) *Redactor {
	r := &Redactor{}
	for _, s := range secrets {
		r.Add(s)
	}
	return r
}

// Add registers a long-lived credential (an API token, a client secret, a
// configured refresh token). Strings shorter than MinSecretLen are ignored.
func (r *Redactor) Add(secret string) {
	if r == nil || len(secret) < MinSecretLen {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.pinned {
		if s == secret {
			return
		}
	}
	r.pinned = append(r.pinned, secret)
}

// AddRecent registers a short-lived credential: an access token just
// obtained or used, a rotated refresh token. The Redactor keeps the most
// recent ones (16) besides the long-lived ones.
func (r *Redactor) AddRecent(secret string) {
	if r == nil || len(secret) < MinSecretLen {
		return
	}
	r.mu.RLock()
	known := contains(r.pinned, secret) || contains(r.recent, secret)
	r.mu.RUnlock()
	if known {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if contains(r.recent, secret) {
		return
	}
	if len(r.recent) >= maxRecent {
		r.recent = append(r.recent[:0], r.recent[1:]...)
	}
	r.recent = append(r.recent, secret)
}

// Link makes r also redact every credential other knows, now and later
// (e.g. an API client's Redactor links its token source's). Do not link in
// a cycle.
func (r *Redactor) Link(other *Redactor) {
	if r == nil || other == nil || other == r {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.linked = append(r.linked, other)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// secrets returns every credential r and its links know, longest first
// (so that a credential containing another is replaced whole).
func (r *Redactor) secrets() []string {
	if r == nil {
		return nil
	}
	var out []string
	r.collect(&out, 0)
	if len(out) > 1 {
		// Insertion sort by length, descending: the lists are short.
		for i := 1; i < len(out); i++ {
			for j := i; j > 0 && len(out[j]) > len(out[j-1]); j-- {
				out[j], out[j-1] = out[j-1], out[j]
			}
		}
	}
	return out
}

func (r *Redactor) collect(out *[]string, depth int) {
	if r == nil || depth > 8 {
		return
	}
	r.mu.RLock()
	*out = append(*out, r.pinned...)
	*out = append(*out, r.recent...)
	linked := r.linked
	r.mu.RUnlock()
	for _, l := range linked {
		l.collect(out, depth+1)
	}
}

// Redact returns s with every known credential replaced by Redacted.
func (r *Redactor) Redact(s string) string {
	secrets := r.secrets()
	if len(secrets) == 0 || s == "" {
		return s
	}
	return redactAll(s, secrets)
}

// RedactBytes is Redact for a byte slice; b is returned as is when it
// contains no credential.
func (r *Redactor) RedactBytes(b []byte) []byte {
	out, _ := redactBytes(b, r.secrets())
	return out
}

// RedactJSON redacts raw JSON text. When replacing a credential would
// leave invalid JSON (a credential written as a number, say), the whole
// value becomes the string "[redacted]".
func (r *Redactor) RedactJSON(raw []byte) []byte {
	out, _ := redactJSON(raw, r.secrets())
	return out
}

func redactBytes(b []byte, secrets []string) ([]byte, bool) {
	if len(secrets) == 0 || len(b) == 0 {
		return b, false
	}
	s := string(b)
	if out := redactAll(s, secrets); out != s {
		return []byte(out), true
	}
	return b, false
}

func redactJSON(raw []byte, secrets []string) ([]byte, bool) {
	out, changed := redactBytes(raw, secrets)
	if !changed {
		return raw, false
	}
	if !json.Valid(out) {
		return []byte(`"` + Redacted + `"`), true
	}
	return out, true
}

// RedactError returns err with its text redacted; the chain stays intact
// (errors.Is and errors.As see through it). A clean err is returned as is.
func (r *Redactor) RedactError(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if clean := r.Redact(msg); clean != msg {
		return &redactedError{msg: clean, err: err}
	}
	return err
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// RedactValue redacts, in place, every string reachable from v (a pointer
// to a decoded reply): struct fields, slice and array elements, map keys
// and values, interface values, and json.RawMessage values (as JSON).
// json.Number values are left alone.
func (r *Redactor) RedactValue(v any) {
	secrets := r.secrets()
	if len(secrets) == 0 || v == nil {
		return
	}
	w := valueRedactor{secrets: secrets}
	w.walk(reflect.ValueOf(v), 0)
}

var (
	rawMessageType = reflect.TypeFor[json.RawMessage]()
	numberType     = reflect.TypeFor[json.Number]()
)

type valueRedactor struct{ secrets []string }

// maxDepth stops a walk of a (never expected) cyclic value.
const maxDepth = 256

func (w valueRedactor) str(s string) string { return redactAll(s, w.secrets) }

// walk redacts v in place where it is settable.
func (w valueRedactor) walk(v reflect.Value, depth int) {
	if depth > maxDepth || !v.IsValid() {
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			w.walk(v.Elem(), depth+1)
		}
	case reflect.Interface:
		if v.IsNil() {
			return
		}
		if nv, changed := w.copyOf(v.Elem(), depth+1); changed && v.CanSet() {
			v.Set(nv)
		}
	case reflect.String:
		if v.Type() == numberType || !v.CanSet() {
			return
		}
		if s := v.String(); s != "" {
			if out := w.str(s); out != s {
				v.SetString(out)
			}
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				w.walk(v.Field(i), depth+1)
			}
		}
	case reflect.Slice:
		if v.Type() == rawMessageType {
			if v.CanSet() {
				if out, changed := redactJSON(v.Bytes(), w.secrets); changed {
					v.SetBytes(out)
				}
			}
			return
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return // other byte slices are not text a reply carries
		}
		for i := 0; i < v.Len(); i++ {
			w.walk(v.Index(i), depth+1)
		}
	case reflect.Array:
		for i := 0; i < v.Len(); i++ {
			w.walk(v.Index(i), depth+1)
		}
	case reflect.Map:
		if v.IsNil() {
			return
		}
		type kv struct{ oldKey, key, val reflect.Value }
		var changes []kv
		iter := v.MapRange()
		for iter.Next() {
			k, val := iter.Key(), iter.Value()
			nk, kChanged := w.copyOf(k, depth+1)
			nv, vChanged := w.copyOf(val, depth+1)
			if kChanged || vChanged {
				changes = append(changes, kv{k, nk, nv})
			}
		}
		for _, c := range changes {
			v.SetMapIndex(c.oldKey, reflect.Value{})
			v.SetMapIndex(c.key, c.val)
		}
	}
}

// copyOf returns a redacted copy of a value that cannot be set in place (a
// map key or value, an interface's dynamic value) and whether it changed.
// Reference types (maps, slices, pointers) are redacted through, in place.
func (w valueRedactor) copyOf(v reflect.Value, depth int) (reflect.Value, bool) {
	switch v.Kind() {
	case reflect.String:
		if v.Type() == numberType {
			return v, false
		}
		s := v.String()
		out := w.str(s)
		if out == s {
			return v, false
		}
		nv := reflect.New(v.Type()).Elem()
		nv.SetString(out)
		return nv, true
	case reflect.Slice:
		if v.Type() == rawMessageType {
			out, changed := redactJSON(v.Bytes(), w.secrets)
			if !changed {
				return v, false
			}
			nv := reflect.New(v.Type()).Elem()
			nv.SetBytes(out)
			return nv, true
		}
		w.walk(v, depth)
		return v, false
	case reflect.Map, reflect.Pointer:
		w.walk(v, depth)
		return v, false
	case reflect.Interface:
		if v.IsNil() {
			return v, false
		}
		return w.copyOf(v.Elem(), depth+1)
	case reflect.Struct, reflect.Array:
		// A copy is redacted and stored back (what it shares with the
		// original, such as slices, is redacted in place).
		nv := reflect.New(v.Type()).Elem()
		nv.Set(v)
		w.walk(nv, depth)
		return nv, true
	}
	return v, false
}

// redactAll replaces every encoding of every secret in s.
func redactAll(s string, secrets []string) string {
	for _, secret := range secrets {
		s = redactOne(s, secret)
	}
	return s
}

// redactOne replaces every occurrence of secret in s, in any of the
// encodings matchAt knows.
func redactOne(s, secret string) string {
	// Fast path: text without an escape character can only hold the secret
	// plainly (or with '+' for a space).
	if !strings.ContainsAny(s, `%\+`) {
		if !strings.Contains(s, secret) {
			return s
		}
		return strings.ReplaceAll(s, secret, Redacted)
	}
	first, _ := utf8.DecodeRuneInString(secret)
	starts := string(first) + `%\`
	if first == ' ' {
		starts += "+"
	}
	var b strings.Builder
	last := 0 // s[last:] is not yet copied
	for i := 0; i < len(s); {
		j := strings.IndexAny(s[i:], starts)
		if j < 0 {
			break
		}
		i += j
		if end := matchAt(s, i, secret); end > i {
			if b.Len() == 0 {
				b.Grow(len(s))
			}
			b.WriteString(s[last:i])
			b.WriteString(Redacted)
			i, last = end, end
			continue
		}
		i++
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// matchAt reports where an encoding of secret that starts at s[i] ends, or
// -1. Each character of the secret may appear plainly, percent-encoded (per
// UTF-8 byte, hex digits of any case; "+" for a space), or JSON-escaped
// (\uXXXX, surrogate pairs, and \" \\ \/ \b \f \n \r \t).
func matchAt(s string, i int, secret string) int {
	if secret == "" {
		return i
	}
	r, size := utf8.DecodeRuneInString(secret)
	rest := secret[size:]
	// Alternatives that begin with the same byte are each tried in turn.
	// 1. Plain.
	if strings.HasPrefix(s[i:], secret[:size]) {
		if end := matchAt(s, i+size, rest); end >= 0 {
			return end
		}
	}
	// 2. Percent-encoded, byte by byte (each byte plain or %XX).
	if end, ok := percentAt(s, i, secret[:size]); ok {
		if end := matchAt(s, end, rest); end >= 0 {
			return end
		}
	}
	if r == ' ' && i < len(s) && s[i] == '+' {
		if end := matchAt(s, i+1, rest); end >= 0 {
			return end
		}
	}
	// 3. JSON escapes.
	if end, ok := jsonEscapeAt(s, i, r); ok {
		if end := matchAt(s, end, rest); end >= 0 {
			return end
		}
	}
	return -1
}

// percentAt matches the bytes of one character, each as %XX, at s[i]; it
// needs at least one byte percent-encoded (the plain form is alternative 1).
func percentAt(s string, i int, char string) (int, bool) {
	j := i
	encoded := false
	for k := 0; k < len(char); k++ {
		c := char[k]
		switch {
		case j+2 < len(s) && s[j] == '%' && hexByte(s[j+1], s[j+2]) == int(c):
			j += 3
			encoded = true
		case j+7 < len(s) && s[j] == '\\' && isPercentEscape(s[j:j+6]) && hexByte(s[j+6], s[j+7]) == int(c):
			// A percent-encoding whose '%' was then JSON-escaped (\u0025).
			j += 8
			encoded = true
		case j < len(s) && s[j] == c:
			j++
		default:
			return 0, false
		}
	}
	return j, encoded
}

func isPercentEscape(s string) bool {
	v, ok := uEscape(s, 0)
	return ok && v == '%'
}

// jsonEscapeAt matches one character written as a JSON escape at s[i].
func jsonEscapeAt(s string, i int, r rune) (int, bool) {
	if i+1 >= len(s) || s[i] != '\\' {
		return 0, false
	}
	if c, ok := jsonShort[r]; ok && s[i+1] == c {
		return i + 2, true
	}
	u, ok := uEscape(s, i)
	if !ok {
		return 0, false
	}
	if r <= 0xFFFF {
		return i + 6, rune(u) == r
	}
	// A character outside the BMP is a surrogate pair.
	hi, lo := 0xD800+((r-0x10000)>>10), 0xDC00+((r-0x10000)&0x3FF)
	if rune(u) != hi {
		return 0, false
	}
	u2, ok := uEscape(s, i+6)
	return i + 12, ok && rune(u2) == lo
}

// jsonShort are JSON's two-character escapes.
var jsonShort = map[rune]byte{'"': '"', '\\': '\\', '/': '/', '\b': 'b', '\f': 'f', '\n': 'n', '\r': 'r', '\t': 't'}

// uEscape reads \uXXXX at s[i].
func uEscape(s string, i int) (int, bool) {
	if i+6 > len(s) || s[i] != '\\' || s[i+1] != 'u' {
		return 0, false
	}
	v := 0
	for k := i + 2; k < i+6; k++ {
		h := hexVal(s[k])
		if h < 0 {
			return 0, false
		}
		v = v<<4 | h
	}
	return v, true
}

func hexByte(a, b byte) int {
	x, y := hexVal(a), hexVal(b)
	if x < 0 || y < 0 {
		return -1
	}
	return x<<4 | y
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
