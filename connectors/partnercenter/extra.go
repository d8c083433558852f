package partnercenter

import (
	"bytes"
	"encoding/json"
	"reflect"
	"sort"
	"strings"
	"sync"
)

// Extra holds the members of a Partner Center object that the Go model does
// not declare, as the upstream sent them. They survive a decode and encode,
// so a full referral returned to a caller keeps every member Partner Center
// returned.
type Extra map[string]json.RawMessage

// knownNames caches the JSON member names a struct type declares.
var knownNames sync.Map // reflect.Type → map[string]bool

func declaredNames(t reflect.Type) map[string]bool {
	if v, ok := knownNames.Load(t); ok {
		return v.(map[string]bool)
	}
	names := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		names[name] = true
	}
	knownNames.Store(t, names)
	return names
}

// DeclaredMembers returns the JSON member names the model type T declares.
// The map is shared: do not modify it.
func DeclaredMembers[T any]() map[string]bool { return declaredNames(reflect.TypeFor[T]()) }

// unknownMembers returns the members of the JSON object b that type t does not
// declare (nil when there are none or b is not an object).
func unknownMembers(b []byte, t reflect.Type) (Extra, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return nil, nil
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, err
	}
	known := declaredNames(t)
	var extra Extra
	for k, v := range all {
		if known[k] {
			continue
		}
		if extra == nil {
			extra = Extra{}
		}
		extra[k] = v
	}
	return extra, nil
}

// withExtra appends the members of extra that t does not declare to the
// encoded object buf, in name order. A declared name in extra is dropped, so
// no member appears twice.
func withExtra(buf []byte, extra Extra, t reflect.Type) ([]byte, error) {
	if len(extra) == 0 {
		return buf, nil
	}
	known := declaredNames(t)
	keys := make([]string, 0, len(extra))
	for k := range extra {
		if !known[k] {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return buf, nil
	}
	sort.Strings(keys)
	buf = bytes.TrimSpace(buf)
	out := bytes.NewBuffer(make([]byte, 0, len(buf)+64*len(keys)))
	out.Write(buf[:len(buf)-1]) // without the closing brace
	first := len(bytes.TrimSpace(buf[1:len(buf)-1])) == 0
	for _, k := range keys {
		if !first {
			out.WriteByte(',')
		}
		first = false
		name, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		out.Write(name)
		out.WriteByte(':')
		v := extra[k]
		if len(bytes.TrimSpace(v)) == 0 {
			v = json.RawMessage("null")
		}
		out.Write(v)
	}
	out.WriteByte('}')
	return out.Bytes(), nil
}

// decodeWithExtra decodes b into *p, a struct type without JSON methods,
// and returns the members of b that P does not declare.
func decodeWithExtra[P any](b []byte, p *P) (Extra, error) {
	if err := json.Unmarshal(b, p); err != nil {
		return nil, err
	}
	return unknownMembers(b, reflect.TypeFor[P]())
}

// encodeWithExtra encodes p, a struct type without JSON methods, with the
// members of extra it does not declare.
func encodeWithExtra[P any](p P, extra Extra) ([]byte, error) {
	buf, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	return withExtra(buf, extra, reflect.TypeFor[P]())
}

// UnmarshalJSON decodes a referral and keeps undeclared members in Extra.
func (r *Referral) UnmarshalJSON(b []byte) error {
	type plain Referral
	var p plain
	extra, err := decodeWithExtra(b, &p)
	if err != nil {
		return err
	}
	p.Extra = extra
	*r = Referral(p)
	return nil
}

// MarshalJSON encodes a referral with the members of Extra.
func (r Referral) MarshalJSON() ([]byte, error) {
	type plain Referral
	return encodeWithExtra(plain(r), r.Extra)
}

// UnmarshalJSON decodes a customer profile and keeps undeclared members in Extra.
func (c *CustomerProfile) UnmarshalJSON(b []byte) error {
	type plain CustomerProfile
	var p plain
	extra, err := decodeWithExtra(b, &p)
	if err != nil {
		return err
	}
	p.Extra = extra
	*c = CustomerProfile(p)
	return nil
}

// MarshalJSON encodes a customer profile with the members of Extra.
func (c CustomerProfile) MarshalJSON() ([]byte, error) {
	type plain CustomerProfile
	return encodeWithExtra(plain(c), c.Extra)
}

// UnmarshalJSON decodes referral details and keeps undeclared members in Extra.
func (d *Details) UnmarshalJSON(b []byte) error {
	type plain Details
	var p plain
	extra, err := decodeWithExtra(b, &p)
	if err != nil {
		return err
	}
	p.Extra = extra
	*d = Details(p)
	return nil
}

// MarshalJSON encodes referral details with the members of Extra.
func (d Details) MarshalJSON() ([]byte, error) {
	type plain Details
	return encodeWithExtra(plain(d), d.Extra)
}

// UnmarshalJSON decodes a deal registration and keeps undeclared members in Extra.
func (g *Registration) UnmarshalJSON(b []byte) error {
	type plain Registration
	var p plain
	extra, err := decodeWithExtra(b, &p)
	if err != nil {
		return err
	}
	p.Extra = extra
	*g = Registration(p)
	return nil
}

// MarshalJSON encodes a deal registration with the members of Extra.
func (g Registration) MarshalJSON() ([]byte, error) {
	type plain Registration
	return encodeWithExtra(plain(g), g.Extra)
}
