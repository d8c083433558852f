package sandbox

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The connector's swagger (../definition/apiDefinition.swagger.json) is the vendor contract the sandbox
// is checked against: every operation it declares is served, and the replies fit the declared
// response schemas.
//
// Known gaps, each deliberate:
//   - GetReportList declares a single {id, name} object; the sandbox answers the
//     ReportListResponse definition the same document carries;
//   - bulkload_opportunity_response has no data_format; the sandbox adds it, as for
//     /bulk/v1/bulkload;
//   - the example of bulkload_status_response shows data_row as an object; its schema says
//     string, which the sandbox follows.

type swaggerDoc struct {
	Paths       map[string]map[string]json.RawMessage `json:"paths"`
	Definitions map[string]map[string]any             `json:"definitions"`
}

func loadSwagger(t *testing.T) swaggerDoc {
	t.Helper()
	raw, err := os.ReadFile("../definition/apiDefinition.swagger.json")
	require.NoError(t, err)
	var doc swaggerDoc
	require.NoError(t, json.Unmarshal(raw, &doc))
	return doc
}

// conform reports where v does not fit a swagger 2.0 schema: undeclared properties, wrong
// JSON types and values outside an enum. $refs are resolved against defs.
func conform(path string, v any, schema map[string]any, defs map[string]map[string]any) []string {
	if ref, ok := schema["$ref"].(string); ok {
		schema = defs[strings.TrimPrefix(ref, "#/definitions/")]
	}
	if v == nil || schema == nil {
		return nil
	}
	var errs []string
	if enum, ok := schema["enum"].([]any); ok && !slices.Contains(enum, v) {
		errs = append(errs, fmt.Sprintf("%s: %v is not one of %v", path, v, enum))
	}
	props, _ := schema["properties"].(map[string]any)
	typ, _ := schema["type"].(string)
	switch typ {
	case "string":
		if _, ok := v.(string); !ok {
			errs = append(errs, fmt.Sprintf("%s: want a string, got %T", path, v))
		}
	case "number", "integer":
		if _, ok := v.(float64); !ok {
			errs = append(errs, fmt.Sprintf("%s: want a number, got %T", path, v))
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			errs = append(errs, fmt.Sprintf("%s: want a boolean, got %T", path, v))
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			return append(errs, fmt.Sprintf("%s: want an array, got %T", path, v))
		}
		items, _ := schema["items"].(map[string]any)
		for i, it := range arr {
			errs = append(errs, conform(fmt.Sprintf("%s/%d", path, i), it, items, defs)...)
		}
	default:
		obj, ok := v.(map[string]any)
		if !ok {
			if typ == "object" {
				errs = append(errs, fmt.Sprintf("%s: want an object, got %T", path, v))
			}
			return errs
		}
		if props == nil {
			return errs // free-form
		}
		for k, val := range obj {
			ps, declared := props[k].(map[string]any)
			if !declared {
				errs = append(errs, fmt.Sprintf("%s/%s: not declared", path, k))
				continue
			}
			errs = append(errs, conform(path+"/"+k, val, ps, defs)...)
		}
	}
	return errs
}

// responseSchema returns the 200 schema of an operation.
func responseSchema(t *testing.T, doc swaggerDoc, path, method string) map[string]any {
	t.Helper()
	raw, ok := doc.Paths[path][method]
	require.True(t, ok, "%s %s not in the swagger", method, path)
	var op struct {
		Responses map[string]struct {
			Schema map[string]any `json:"schema"`
		} `json:"responses"`
	}
	require.NoError(t, json.Unmarshal(raw, &op))
	return op.Responses["200"].Schema
}

func TestRepliesFitTheSwagger(t *testing.T) {
	doc := loadSwagger(t)
	e := newEnv(t, Options{})
	opp := e.opportunityIDs()[0]
	check := func(path, method string, body map[string]any) {
		t.Helper()
		schema := responseSchema(t, doc, path, method)
		assert.Empty(t, conform(method+" "+path, body, schema, doc.Definitions))
	}
	check("/app/v1/object/{object_id}/external_id", "get", e.get("/app/v1/object/"+opp+"/external_id").ok(t, http.StatusOK))
	check("/app/v1/object/{object_id}/external_id", "patch",
		e.call(http.MethodPatch, "/app/v1/object/"+opp+"/external_id", map[string]any{"external_id": "x"}).ok(t, http.StatusOK))
	check("/app/v1/object/{object_id}/audit", "patch", e.call(http.MethodPatch, "/app/v1/object/"+opp+"/audit",
		map[string]any{"field_name": fieldIntegrationStatus, "status_code": "LINKED", "message": "ok"}).ok(t, http.StatusOK))

	created, st := e.load("/bulk/v1/bulkload?integration_id=int-crm-001", "name,stage\nA,Qualify\nB,\n")
	check("/bulk/v1/bulkload", "post", created)
	check("/bulk/v1/status/{integration_id}", "get", st)
	require.NotEmpty(t, st["errors"])
	created, _ = e.load("/bulk/v1/bulkload_opportunity?integration_id=int-crm-001", "name,stage\nA,Qualify\n")
	delete(created, "data_format") // a deliberate extra, see above
	check("/bulk/v1/bulkload_opportunity", "post", created)

	list := e.call(http.MethodPost, "/report/v1/list", nil).ok(t, http.StatusOK)
	assert.Empty(t, conform("report list", list, doc.Definitions["ReportListResponse"], doc.Definitions))
	data := e.call(http.MethodPost, "/report/v1/"+e.reportID("All opportunities")+"/data", nil).ok(t, http.StatusOK)
	check("/report/v1/{reportId}/data", "post", data)

	check("/event/v1/metadata/integration", "get", e.get("/event/v1/metadata/integration").ok(t, http.StatusOK))
	check("/event/v1/metadata/integration/{integration_id}", "get", e.get("/event/v1/metadata/integration/int-crm-001").ok(t, http.StatusOK))
	check("/event/v1/metadata/event", "get", e.get("/event/v1/metadata/event").ok(t, http.StatusOK))
	check("/event/v1/metadata/event/{event}", "get", e.get("/event/v1/metadata/event/object.all").ok(t, http.StatusOK))
	sub := e.call(http.MethodPost, "/event/v1/subscriber", validSubscriber()).ok(t, http.StatusOK)
	check("/event/v1/subscriber", "post", sub)
	check("/event/v1/subscriber/{subscriber_id}", "get", e.get("/event/v1/subscriber/"+sub["subscriber_id"].(string)).ok(t, http.StatusOK))
}

// TestSwaggerOperationsAreServed checks that every declared path and method reaches a handler
// (anything but 404 and 405 for an authenticated request).
func TestSwaggerOperationsAreServed(t *testing.T) {
	doc := loadSwagger(t)
	e := newEnv(t, Options{})
	opp := e.opportunityIDs()[0]
	fill := strings.NewReplacer("{object_id}", opp, "{integration_id}", "int-crm-001", "{event}", "object.all",
		"{reportId}", e.reportID("All opportunities"), "{subscriber_id}", "unknown-subscriber")
	n := 0
	for path, methods := range doc.Paths {
		for method := range methods {
			if strings.HasPrefix(method, "x-") {
				continue
			}
			n++
			r := e.call(strings.ToUpper(method), fill.Replace(path), map[string]any{})
			assert.NotEqual(t, http.StatusMethodNotAllowed, r.status, "%s %s", method, path)
			if !strings.Contains(path, "{subscriber_id}") {
				assert.NotEqual(t, http.StatusNotFound, r.status, "%s %s: %s", method, path, r.raw)
			}
		}
	}
	assert.Equal(t, 19, n)
}
