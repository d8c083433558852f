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

// decodeKeeping decodes b into *p, the method-less form of a model type,
// and sets *extra to the members of b that P does not declare.
func decodeKeeping[P any](b []byte, p *P, extra *Extra) error {
	e, err := decodeWithExtra(b, p)
	if err != nil {
		return err
	}
	*extra = e
	return nil
}

// Every model type keeps the members it does not declare: each decodes
// through its method-less form (plain) and encodes with its Extra.

func (v *Referral) UnmarshalJSON(b []byte) error {
	type plain Referral
	return decodeKeeping(b, (*plain)(v), &v.Extra)
}
func (v Referral) MarshalJSON() ([]byte, error) {
	type plain Referral
	return encodeWithExtra(plain(v), v.Extra)
}

func (v *CustomerProfile) UnmarshalJSON(b []byte) error {
	type plain CustomerProfile
	return decodeKeeping(b, (*plain)(v), &v.Extra)
}
func (v CustomerProfile) MarshalJSON() ([]byte, error) {
	type plain CustomerProfile
	return encodeWithExtra(plain(v), v.Extra)
}

func (v *Details) UnmarshalJSON(b []byte) error {
	type plain Details
	return decodeKeeping(b, (*plain)(v), &v.Extra)
}
func (v Details) MarshalJSON() ([]byte, error) {
	type plain Details
	return encodeWithExtra(plain(v), v.Extra)
}

func (v *Registration) UnmarshalJSON(b []byte) error {
	type plain Registration
	return decodeKeeping(b, (*plain)(v), &v.Extra)
}
func (v Registration) MarshalJSON() ([]byte, error) {
	type plain Registration
	return encodeWithExtra(plain(v), v.Extra)
}

func (v *Consent) UnmarshalJSON(b []byte) error {
	type plain Consent
	return decodeKeeping(b, (*plain)(v), &v.Extra)
}
func (v Consent) MarshalJSON() ([]byte, error) {
	type plain Consent
	return encodeWithExtra(plain(v), v.Extra)
}

func (v *Address) UnmarshalJSON(b []byte) error {
	type plain Address
	return decodeKeeping(b, (*plain)(v), &v.Extra)
}
func (v Address) MarshalJSON() ([]byte, error) {
	type plain Address
	return encodeWithExtra(plain(v), v.Extra)
}

func (v *Member) UnmarshalJSON(b []byte) error {
	type plain Member
	return decodeKeeping(b, (*plain)(v), &v.Extra)
}
func (v Member) MarshalJSON() ([]byte, error) {
	type plain Member
	return encodeWithExtra(plain(v), v.Extra)
}

func (v *ContactPreference) UnmarshalJSON(b []byte) error {
	type plain ContactPreference
	return decodeKeeping(b, (*plain)(v), &v.Extra)
}
func (v ContactPreference) MarshalJSON() ([]byte, error) {
	type plain ContactPreference
	return encodeWithExtra(plain(v), v.Extra)
}

func (v *Requirements) UnmarshalJSON(b []byte) error {
	type plain Requirements
	return decodeKeeping(b, (*plain)(v), &v.Extra)
}
func (v Requirements) MarshalJSON() ([]byte, error) {
	type plain Requirements
	return encodeWithExtra(plain(v), v.Extra)
}

func (v *AdditionalRequirements) UnmarshalJSON(b []byte) error {
	type plain AdditionalRequirements
	return decodeKeeping(b, (*plain)(v), &v.Extra)
}
func (v AdditionalRequirements) MarshalJSON() ([]byte, error) {
	type plain AdditionalRequirements
	return encodeWithExtra(plain(v), v.Extra)
}

func (v *InviteContext) UnmarshalJSON(b []byte) error {
	type plain InviteContext
	return decodeKeeping(b, (*plain)(v), &v.Extra)
}
func (v InviteContext) MarshalJSON() ([]byte, error) {
	type plain InviteContext
	return encodeWithExtra(plain(v), v.Extra)
}

func (v *Organization) UnmarshalJSON(b []byte) error {
	type plain Organization
	return decodeKeeping(b, (*plain)(v), &v.Extra)
}
func (v Organization) MarshalJSON() ([]byte, error) {
	type plain Organization
	return encodeWithExtra(plain(v), v.Extra)
}

func (v *Target) UnmarshalJSON(b []byte) error {
	type plain Target
	return decodeKeeping(b, (*plain)(v), &v.Extra)
}
func (v Target) MarshalJSON() ([]byte, error) {
	type plain Target
	return encodeWithExtra(plain(v), v.Extra)
}

func (v *TrackingInfo) UnmarshalJSON(b []byte) error {
	type plain TrackingInfo
	return decodeKeeping(b, (*plain)(v), &v.Extra)
}
func (v TrackingInfo) MarshalJSON() ([]byte, error) {
	type plain TrackingInfo
	return encodeWithExtra(plain(v), v.Extra)
}

func (v *Contract) UnmarshalJSON(b []byte) error {
	type plain Contract
	return decodeKeeping(b, (*plain)(v), &v.Extra)
}
func (v Contract) MarshalJSON() ([]byte, error) {
	type plain Contract
	return encodeWithExtra(plain(v), v.Extra)
}

func (v *SolutionDetail) UnmarshalJSON(b []byte) error {
	type plain SolutionDetail
	return decodeKeeping(b, (*plain)(v), &v.Extra)
}
func (v SolutionDetail) MarshalJSON() ([]byte, error) {
	type plain SolutionDetail
	return encodeWithExtra(plain(v), v.Extra)
}

func (v *MarketplaceTransactionDetails) UnmarshalJSON(b []byte) error {
	type plain MarketplaceTransactionDetails
	return decodeKeeping(b, (*plain)(v), &v.Extra)
}
func (v MarketplaceTransactionDetails) MarshalJSON() ([]byte, error) {
	type plain MarketplaceTransactionDetails
	return encodeWithExtra(plain(v), v.Extra)
}

func (v *StatusHistory) UnmarshalJSON(b []byte) error {
	type plain StatusHistory
	return decodeKeeping(b, (*plain)(v), &v.Extra)
}
func (v StatusHistory) MarshalJSON() ([]byte, error) {
	type plain StatusHistory
	return encodeWithExtra(plain(v), v.Extra)
}
