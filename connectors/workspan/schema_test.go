package workspan

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/internal/upstream"
)

func TestObjectSchema(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.EscapedPath() {
		case "/event/v1/metadata/integration/WS-Integration%2F1":
			writeJSON(w, 200, `{"schema":{"type":"object","title":"Opportunity","required":["name","sales_details","object_id"],
				"properties":{
					"object_id":{"type":"string","readOnly":true},
					"name":{"type":"string","description":"Opportunity name"},
					"stage":{"type":["null","string"],"enum":["Qualify","Closed Won",null]},
					"amount":{"type":"number"},
					"sales_details":{"type":"object","required":["crm_opportunity_id"],"properties":{
						"crm_opportunity_id":{"type":"string"},
						"close_date":{"type":"string","format":"date"}}},
					"audit":{"type":"object","readOnly":true,"properties":{"by":{"type":"string"}}},
					"tier":{"type":"integer","enum":[1,2]}}}}`)
		case "/event/v1/metadata/integration/flat":
			writeJSON(w, 200, `{"schema":{}}`)
		case "/event/v1/metadata/integration/none":
			writeJSON(w, 200, `{"integrations":[]}`)
		default:
			writeJSON(w, 404, `{"message":"integration not defined"}`)
		}
	})
	c := f.client()
	s, err := c.ObjectSchema(context.Background(), "WS-Integration/1")
	require.NoError(t, err)
	assert.Equal(t, http.MethodGet, f.last().Method)
	assert.Equal(t, "Opportunity", s.Title)
	var names []string
	for _, fl := range s.Fields {
		names = append(names, fl.Name)
	}
	assert.Equal(t, []string{"object_id", "name", "stage", "amount", "sales_details.crm_opportunity_id", "sales_details.close_date", "audit.by", "tier"}, names, "document order, nested objects flattened")
	stage, _ := s.Field("stage")
	assert.Equal(t, SchemaField{Name: "stage", Type: "string", Enum: []string{"Qualify", "Closed Won"}}, stage, "a null value only says it may be empty")
	crm, _ := s.Field("sales_details.crm_opportunity_id")
	assert.True(t, crm.Required, "required in a required object")
	closeDate, _ := s.Field("sales_details.close_date")
	assert.Equal(t, "date", closeDate.Format)
	assert.False(t, closeDate.Required)
	by, _ := s.Field("audit.by")
	assert.True(t, by.ReadOnly, "inside a read-only object")
	id, _ := s.Field("object_id")
	assert.True(t, id.ReadOnly && id.Required)
	tier, _ := s.Field("tier")
	assert.Equal(t, []string{"1", "2"}, tier.Enum)
	_, ok := s.Field("nope")
	assert.False(t, ok)

	s, err = c.ObjectSchema(context.Background(), "flat")
	require.NoError(t, err)
	assert.Empty(t, s.Fields)

	_, err = c.ObjectSchema(context.Background(), "none")
	var be *upstream.BodyError
	assert.True(t, errors.As(err, &be), "a reply without a schema: %v", err)

	_, err = c.ObjectSchema(context.Background(), "gone")
	var ue *upstream.Error
	require.True(t, errors.As(err, &ue), "%v", err)
	assert.Equal(t, 404, ue.Status)
	assert.Equal(t, "integration not defined", ue.Message)

	_, err = c.ObjectSchema(context.Background(), " ")
	assert.ErrorIs(t, err, ErrInvalidArgument)
}
