package sandbox

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"regexp"
	"time"
)

const maxBody = 1 << 20

// body is a decoded JSON request object whose fields are type-checked on access.
type body map[string]json.RawMessage

func readBody(r *http.Request) (body, *apiError) {
	buf, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, badRequest("Could not read the request body")
	}
	if len(buf) > maxBody {
		return nil, &apiError{status: http.StatusRequestEntityTooLarge, msg: "Request entity too large"}
	}
	if len(bytes.TrimSpace(buf)) == 0 {
		return body{}, nil
	}
	var b body
	if err := json.Unmarshal(buf, &b); err != nil || b == nil {
		return nil, badRequest("Invalid JSON in the request body")
	}
	return b, nil
}

// present reports whether the field was sent; null reports whether it was sent as null.
func (b body) present(name string) (present, null bool) {
	raw, ok := b[name]
	if !ok {
		return false, false
	}
	return true, string(bytes.TrimSpace(raw)) == "null"
}

func (b body) typeErr(name, typ string) *apiError {
	return badRequest("The field '%s' must be %s", name, typ)
}

// str returns a string field; nil when absent or null.
func (b body) str(name string) (*string, *apiError) {
	if p, null := b.present(name); !p || null {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(b[name], &s); err != nil {
		return nil, b.typeErr(name, "a string")
	}
	return &s, nil
}

// integer returns an integer field; nil when absent or null.
func (b body) integer(name string) (*int, *apiError) {
	if p, null := b.present(name); !p || null {
		return nil, nil
	}
	var f float64
	if err := json.Unmarshal(b[name], &f); err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<31 {
		return nil, b.typeErr(name, "an integer")
	}
	n := int(f)
	return &n, nil
}

// number returns a numeric field; nil when absent or null.
func (b body) number(name string) (*float64, *apiError) {
	if p, null := b.present(name); !p || null {
		return nil, nil
	}
	var f float64
	if err := json.Unmarshal(b[name], &f); err != nil {
		return nil, b.typeErr(name, "a number")
	}
	return &f, nil
}

func (b body) boolean(name string) (*bool, *apiError) {
	if p, null := b.present(name); !p || null {
		return nil, nil
	}
	var v bool
	if err := json.Unmarshal(b[name], &v); err != nil {
		return nil, b.typeErr(name, "a boolean")
	}
	return &v, nil
}

func (b body) intList(name string) ([]int, *apiError) {
	if p, null := b.present(name); !p || null {
		return nil, nil
	}
	var fs []float64
	if err := json.Unmarshal(b[name], &fs); err != nil {
		return nil, b.typeErr(name, "an array of integers")
	}
	out := make([]int, 0, len(fs))
	for _, f := range fs {
		if f != math.Trunc(f) {
			return nil, b.typeErr(name, "an array of integers")
		}
		out = append(out, int(f))
	}
	return out, nil
}

// timeField parses a date-time given as RFC 3339 or Pipedrive's "YYYY-MM-DD HH:MM:SS" (UTC).
func (b body) timeField(name string) (*time.Time, *apiError) {
	s, err := b.str(name)
	if err != nil || s == nil {
		return nil, err
	}
	for _, layout := range []string{time.RFC3339, v1TimeLayout} {
		if t, perr := time.Parse(layout, *s); perr == nil {
			t = t.UTC().Truncate(time.Second)
			return &t, nil
		}
	}
	return nil, badRequest("The field '%s' must be a date and time in the format YYYY-MM-DD HH:MM:SS or RFC3339", name)
}

// dateField parses a "YYYY-MM-DD" date.
func (b body) dateField(name string) (*string, *apiError) {
	s, err := b.str(name)
	if err != nil || s == nil {
		return nil, err
	}
	if _, perr := time.Parse(dateLayout, *s); perr != nil {
		return nil, badRequest("The field '%s' must be a date in the format YYYY-MM-DD", name)
	}
	return s, nil
}

var (
	clockRe    = regexp.MustCompile(`^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$`)
	currencyRe = regexp.MustCompile(`^[A-Z]{3}$`)
)

// clockField parses "HH:MM" or "HH:MM:SS" and returns "HH:MM:SS".
func (b body) clockField(name string) (*string, *apiError) {
	s, err := b.str(name)
	if err != nil || s == nil {
		return nil, err
	}
	if !clockRe.MatchString(*s) {
		return nil, badRequest("The field '%s' must be a time in the format HH:MM", name)
	}
	if len(*s) == 5 {
		return ptr(*s + ":00"), nil
	}
	return s, nil
}

// unmarshalField decodes a field into v, reporting a type error as a 400.
func unmarshalField(b body, name string, v any) *apiError {
	if err := json.Unmarshal(b[name], v); err != nil {
		return b.typeErr(name, "of the documented type")
	}
	return nil
}
