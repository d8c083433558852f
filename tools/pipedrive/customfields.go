package pipedrive

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	pd "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
	"github.com/cosell-mcp/cosell-mcp/tools"
)

// customFieldSet is the company's deal custom fields, by code and by name.
type customFieldSet struct {
	byCode map[string]pd.DealField
	byName map[string]pd.DealField // lower-cased, trimmed names
	names  []string                // display names, sorted
}

func newCustomFieldSet(fields []pd.DealField) customFieldSet {
	set := customFieldSet{byCode: map[string]pd.DealField{}, byName: map[string]pd.DealField{}}
	for _, f := range fields {
		if !f.IsCustomField {
			continue
		}
		set.byCode[f.FieldCode] = f
		set.byName[normName(f.FieldName)] = f
		set.names = append(set.names, f.FieldName)
	}
	slices.Sort(set.names)
	return set
}

func normName(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// lookup finds a custom field by its name (any case) or its field code.
func (s customFieldSet) lookup(key string) (pd.DealField, bool) {
	if f, ok := s.byName[normName(key)]; ok {
		return f, true
	}
	f, ok := s.byCode[key]
	return f, ok
}

// namedCustomFields turns a deal's custom field values (keyed by 40-char
// codes, options by id) into what a person reads: field names as keys,
// option labels as values. Unset fields are left out; a field the cache
// does not know keeps its code.
func namedCustomFields(set customFieldSet, raw map[string]json.RawMessage) map[string]any {
	out := map[string]any{}
	for code, v := range raw {
		var val any
		if err := json.Unmarshal(v, &val); err != nil || val == nil || val == "" {
			continue
		}
		f, ok := set.byCode[code]
		if !ok {
			out[code] = val
			continue
		}
		switch f.FieldType {
		case "enum":
			val = optionLabel(f, val)
		case "set":
			if ids, isList := val.([]any); isList {
				labels := make([]any, len(ids))
				for i, id := range ids {
					labels[i] = optionLabel(f, id)
				}
				val = labels
			}
		}
		out[f.FieldName] = val
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// optionLabel maps an option id (or an {id, label} object) to its label.
func optionLabel(f pd.DealField, v any) any {
	switch x := v.(type) {
	case float64:
		if o, ok := f.OptionByID(int64(x)); ok {
			return o.Label
		}
	case map[string]any:
		if l, ok := x["label"].(string); ok {
			return l
		}
	}
	return v
}

// encodeCustomFields checks custom field values given by name (or code)
// against the company's fields and encodes them as the API wants: option
// labels become ids, a bare number is a monetary amount in the deal's
// currency. Nothing is sent when a value is wrong.
func encodeCustomFields(set customFieldSet, in map[string]any) (map[string]any, *tools.Error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := map[string]any{}
	keys := make([]string, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, key := range keys {
		f, ok := set.lookup(key)
		if !ok {
			if len(set.names) == 0 {
				return nil, tools.InvalidArgument("custom_fields", "unknown custom field %q: this Pipedrive company has no deal custom fields", key)
			}
			return nil, tools.InvalidArgument("custom_fields", "unknown custom field %q; the deal custom fields are: %s", key, strings.Join(set.names, ", "))
		}
		v, err := encodeCustomValue(f, in[key])
		if err != nil {
			return nil, tools.InvalidArgument("custom_fields", "%s: %s", f.FieldName, err)
		}
		out[f.FieldCode] = v
	}
	return out, nil
}

func encodeCustomValue(f pd.DealField, v any) (any, error) {
	if v == nil {
		return nil, nil // clears the field
	}
	switch f.FieldType {
	case "double":
		return number(v)
	case "monetary":
		if m, ok := v.(map[string]any); ok {
			amount, err := number(m["value"])
			if err != nil {
				return nil, err
			}
			cur, _ := m["currency"].(string)
			return pd.MonetaryValue{Value: amount, Currency: cur}, nil
		}
		amount, err := number(v)
		if err != nil {
			return nil, fmt.Errorf("want an amount or {\"value\", \"currency\"}")
		}
		return pd.MonetaryValue{Value: amount}, nil
	case "date":
		s, ok := v.(string)
		if !ok || tools.CheckDate("", s) != nil {
			return nil, fmt.Errorf("want a date YYYY-MM-DD")
		}
		return s, nil
	case "enum":
		return optionID(f, v)
	case "set":
		list, ok := v.([]any)
		if !ok {
			list = []any{v}
		}
		if len(list) == 0 {
			return nil, fmt.Errorf("give at least one option, or null to clear")
		}
		ids := make([]int64, 0, len(list))
		for _, item := range list {
			id, err := optionID(f, item)
			if err != nil {
				return nil, err
			}
			ids = append(ids, id)
		}
		return ids, nil
	case "varchar", "varchar_auto", "text", "phone", "address":
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("want text")
		}
		return s, nil
	default:
		return v, nil // other types (user, org, time…) go as given; Pipedrive checks them
	}
}

// optionID accepts an option's label or id.
func optionID(f pd.DealField, v any) (int64, error) {
	if s, ok := v.(string); ok {
		if o, found := f.Option(s); found {
			return o.ID, nil
		}
	} else if n, err := number(v); err == nil {
		if o, found := f.OptionByID(int64(n)); found {
			return o.ID, nil
		}
	}
	labels := make([]string, 0, len(f.Options))
	for _, o := range f.Options {
		labels = append(labels, o.Label)
	}
	return 0, fmt.Errorf("%v is not an option; choose one of: %s", v, strings.Join(labels, ", "))
}

// number reads a JSON number (json.Number from the argument decoder).
func number(v any) (float64, error) {
	switch n := v.(type) {
	case json.Number:
		return n.Float64()
	case float64:
		return n, nil
	case int64:
		return float64(n), nil
	case int:
		return float64(n), nil
	}
	return 0, fmt.Errorf("want a number")
}
