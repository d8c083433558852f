package pipedrive

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"

	pd "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
)

func TestNamedCustomFieldsKeepWhatTheyCannotName(t *testing.T) {
	set := newCustomFieldSet([]pd.DealField{
		{FieldName: "Title", FieldCode: "title", FieldType: "varchar"}, // standard: not a custom field
		{FieldName: "Motion", FieldCode: "aaa", FieldType: "enum", IsCustomField: true, Options: []pd.FieldOption{{ID: 1, Label: "Joint"}}},
	})
	raw := map[string]json.RawMessage{
		"aaa": json.RawMessage(`9`),      // an option the cache does not know
		"bbb": json.RawMessage(`"kept"`), // a field the cache does not know
		"ccc": json.RawMessage(`null`),   // unset
		"ddd": json.RawMessage(`""`),     // blank
		"eee": json.RawMessage(`{"id":1,"label":"Joint"}`),
	}
	assert.Equal(t, map[string]any{"Motion": 9.0, "bbb": "kept", "eee": map[string]any{"id": 1.0, "label": "Joint"}}, namedCustomFields(set, raw))
	assert.Nil(t, namedCustomFields(set, map[string]json.RawMessage{"ccc": json.RawMessage(`null`)}))

	_, err := encodeCustomFields(set, map[string]any{"Title": "x"})
	assert.ErrorContains(t, err, `unknown custom field "Title"`, "standard fields are not custom fields")
	_, err = encodeCustomFields(customFieldSet{}, map[string]any{"Motion": "Joint"})
	assert.ErrorContains(t, err, "no deal custom fields")
	out, err := encodeCustomFields(set, map[string]any{"aaa": json.Number("1")})
	assert.Nil(t, err)
	assert.Equal(t, map[string]any{"aaa": int64(1)}, out, "by code and option id too")
	out, err = encodeCustomFields(set, map[string]any{"motion": nil})
	assert.Nil(t, err)
	assert.Equal(t, map[string]any{"aaa": nil}, out, "null clears")
}
