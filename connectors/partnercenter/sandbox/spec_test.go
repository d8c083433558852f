package sandbox

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The connector's swagger (testdata/partnercenterreferrals.swagger.json) is the vendor contract
// the sandbox is checked against: every referral it serves must fit the Referral definition,
// and the operations, query options and PATCH paths it declares must be served.

const referralDef = "Microsoft.Partner.Service.PartnerReferrals.Contracts.V3.Referral"

// Known gaps in the swagger, each a deliberate choice:
//   - a registration's solutionDetails carry a currency: the DealRegistration input and the
//     /registrations/0/solutionDetails/0/currency PATCH path have it, the Referral definition
//     does not list it;
//   - CreateReferral answers 201 Created (the Referrals API's documented code for a created
//     resource) where the connector declares 200.
var undeclaredInSwagger = []string{"/registrations/0/solutionDetails/0/currency"}

var statusNotInSwagger = map[string]int{"CreateReferral": http.StatusCreated}

type swaggerDoc struct {
	BasePath    string                          `json:"basePath"`
	Paths       map[string]map[string]swaggerOp `json:"paths"`
	Definitions map[string]map[string]any       `json:"definitions"`
}

type swaggerOp struct {
	OperationID string           `json:"operationId"`
	Parameters  []map[string]any `json:"parameters"`
	Responses   map[string]any   `json:"responses"`
}

func loadSwagger(t *testing.T) swaggerDoc {
	t.Helper()
	raw, err := os.ReadFile("testdata/partnercenterreferrals.swagger.json")
	require.NoError(t, err)
	var doc swaggerDoc
	require.NoError(t, json.Unmarshal(raw, &doc))
	return doc
}

// conform reports where v does not fit a swagger 2.0 schema: undeclared properties, wrong
// JSON types and values outside an enum.
func conform(path string, v any, schema map[string]any) []string {
	if v == nil {
		return nil
	}
	var errs []string
	if enum, ok := schema["enum"].([]any); ok && !slices.Contains(enum, v) {
		errs = append(errs, fmt.Sprintf("%s: %v is not one of %v", path, v, enum))
	}
	props, _ := schema["properties"].(map[string]any)
	typ, _ := schema["type"].(string)
	if typ == "string" && props != nil {
		typ = "object" // the definition of tags declares string items with object properties
	}
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
			errs = append(errs, conform(fmt.Sprintf("%s/%d", path, i), it, items)...)
		}
	case "object", "":
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
			errs = append(errs, conform(path+"/"+k, val, ps)...)
		}
	}
	return errs
}

func TestServedReferralsFitTheSwagger(t *testing.T) {
	doc := loadSwagger(t)
	schema := doc.Definitions[referralDef]
	require.NotNil(t, schema)
	e := newEnv(t, Options{})

	check := func(what string, v map[string]any) {
		t.Helper()
		var errs []string
		for _, err := range conform("", v, schema) {
			if !slices.Contains(undeclaredInSwagger, strings.TrimSuffix(err, ": not declared")) {
				errs = append(errs, err)
			}
		}
		require.Empty(t, errs, "%s does not fit the swagger Referral", what)
	}
	list := e.list("$count", "true")
	for k := range list.body {
		require.Contains(t, []string{"@odata.context", "@odata.count", "value", "@odata.nextLink"}, k)
	}
	for _, r := range list.items(t) {
		check("seeded referral "+r["id"].(string), r)
	}

	created := e.create(newReferral("Contoso Ltd"))
	check("created referral", created)
	id := created["id"].(string)
	e.patch(id, []any{op("replace", "/status", "Active"), op("replace", "/substatus", "Accepted"), op("add", "/registrations/-", registrationValue())}).ok(t, http.StatusNoContent)
	check("registered referral", e.referral(id))

	// The registration value the sandbox accepts fits the DealRegistration definition.
	regSchema := doc.Definitions["Microsoft.Partner.Service.PartnerReferrals.Contracts.V3.DealRegistration"]
	raw, err := json.Marshal([]any{op("add", "/registrations/-", registrationValue())})
	require.NoError(t, err)
	var patch any
	require.NoError(t, json.Unmarshal(raw, &patch))
	require.Empty(t, conform("", patch, regSchema))
}

func TestSwaggerOperationsAreServed(t *testing.T) {
	doc := loadSwagger(t)
	require.Equal(t, "/v1.0/engagements/", doc.BasePath)
	e := newEnv(t, Options{})
	id := e.find("status eq 'Active'")["id"].(string)

	var served []string
	for path, ops := range doc.Paths {
		for method, o := range ops {
			served = append(served, o.OperationID)
			url := strings.TrimSuffix(doc.BasePath, "/") + strings.ReplaceAll(path, "{id}", id)
			var r resp
			switch o.OperationID {
			case "GetAllReferrals":
				q := []string{}
				for _, p := range o.Parameters {
					switch p["name"] {
					case "$expand":
						q = append(q, "$expand", "none")
					case "$filter":
						q = append(q, "$filter", "status eq 'Active'")
					case "$select":
						q = append(q, "$select", "id,status,customerProfile")
					case "$orderby":
						q = append(q, "$orderby", "updatedDateTime desc")
					case "$top":
						q = append(q, "$top", "5")
					case "$skip":
						q = append(q, "$skip", "1")
					case "$count":
						q = append(q, "$count", "true")
					}
				}
				require.Len(t, q, 14, "all seven query options declared")
				r = e.get(url + "?" + encodeQuery(q...))
				require.Equal(t, http.StatusOK, r.status, "%s: %s", o.OperationID, r.raw)
				require.NotEmpty(t, r.items(t))
			case "CreateReferral":
				r = e.call(strings.ToUpper(method), url, newReferral("Fabrikam Inc"))
				require.Equal(t, http.StatusCreated, r.status, "%s: %s", o.OperationID, r.raw)
			case "GetReferralById":
				r = e.get(url)
				require.Equal(t, http.StatusOK, r.status, "%s: %s", o.OperationID, r.raw)
			case "UpdateReferralById":
				body := e.referral(id)
				r = e.call(strings.ToUpper(method), url, body, "if-match", body["eTag"].(string))
				require.Equal(t, http.StatusOK, r.status, "%s: %s", o.OperationID, r.raw)
			case "PatchReferralById":
				r = e.call(strings.ToUpper(method), url, []any{op("replace", "/details/notes", "patched")})
				require.Equal(t, http.StatusNoContent, r.status, "%s: %s", o.OperationID, r.raw)
			case "CreateDealRegistrationByReferralId":
				target := e.createIn("Active", "Accepted")["id"].(string)
				url = strings.ReplaceAll(url, id, target)
				r = e.call(strings.ToUpper(method), url, []any{op("add", "/registrations/-", registrationValue())})
				require.Equal(t, http.StatusNoContent, r.status, "%s: %s", o.OperationID, r.raw)
				id = target // the deal registration update below needs a registration
			case "PatchDealRegistrationByReferralId":
				continue // run after the create, below
			default:
				t.Fatalf("unexpected operation %s", o.OperationID)
			}
			if statusNotInSwagger[o.OperationID] == r.status {
				continue
			}
			require.Contains(t, o.Responses, fmt.Sprint(r.status), "%s declares its status", o.OperationID)
		}
	}
	sort.Strings(served)
	require.Equal(t, []string{"CreateDealRegistrationByReferralId", "CreateReferral", "GetAllReferrals", "GetReferralById",
		"PatchDealRegistrationByReferralId", "PatchReferralById", "UpdateReferralById"}, served)

	regID := e.find("registrationStatus eq 'ReviewPending' and createdDateTime eq " + testNow.Format("2006-01-02T15:04:05Z"))["id"].(string)
	r := e.call(http.MethodPatch, "/v1.0/engagements/referrals/"+regID+"//", []any{op("replace", "/registrations/0/contract/value", 1000)})
	require.Equal(t, http.StatusNoContent, r.status, "%s", r.raw)
}

func TestSwaggerPatchPaths(t *testing.T) {
	doc := loadSwagger(t)
	enumOf := func(def, prop string) []string {
		items := doc.Definitions[def]["items"].(map[string]any)
		p := items["properties"].(map[string]any)[prop].(map[string]any)
		var out []string
		for _, v := range p["enum"].([]any) {
			out = append(out, v.(string))
		}
		return out
	}
	const prefix = "Microsoft.Partner.Service.PartnerReferrals.Contracts.V3."
	var declared []string
	for _, def := range []string{"UpdateReferralDetails", "DealRegistration", "UpdateDealRegistration"} {
		declared = append(declared, enumOf(prefix+def, "path")...)
		for _, o := range enumOf(prefix+def, "op") {
			require.Contains(t, []string{"replace", "add"}, o)
		}
	}
	sort.Strings(declared)
	ours := slices.Clone(patchPaths)
	sort.Strings(ours)
	require.Equal(t, declared, ours, "the sandbox accepts exactly the declared PATCH paths")

	// Each declared path works end to end with a value of the right type.
	e := newEnv(t, Options{})
	id := e.createIn("Active", "Accepted")["id"].(string)
	e.patch(id, []any{op("add", "/registrations/-", registrationValue())}).ok(t, http.StatusNoContent)
	values := map[string]any{
		"string": "x", "date": "2027-01-01T00:00:00Z", "bool": true, "number": 10,
		"member": map[string]any{"email": "m@treyresearch.net"}, "members": []any{map[string]any{"email": "m@treyresearch.net"}},
	}
	valueFor := func(path string) any {
		switch {
		case strings.HasSuffix(path, "DateTime"):
			return values["date"]
		case strings.HasSuffix(path, "team/-"):
			return values["member"]
		case strings.HasSuffix(path, "team"):
			return values["members"]
		case strings.HasSuffix(path, "solutions"):
			return []any{map[string]any{"id": "SOL-1"}}
		case strings.HasSuffix(path, "solutions/-"):
			return map[string]any{"id": "SOL-2"}
		case strings.HasSuffix(path, "/value"), strings.HasSuffix(path, "dealValue"):
			return values["number"]
		case strings.HasPrefix(path, "/consent"), strings.HasSuffix(path, "isDeployedOnAzure"), strings.HasSuffix(path, "isMarketplaceTransacted"):
			return values["bool"]
		case strings.HasSuffix(path, "currency"):
			return "USD"
		case strings.HasSuffix(path, "term"):
			return "Perpetual"
		case strings.HasSuffix(path, "primaryDeploymentOn"):
			return "Partner"
		case strings.HasSuffix(path, "pricingModel"):
			return "Other"
		case path == "/salesStage":
			return "Propose"
		case path == "/status":
			return "Active"
		case path == "/substatus":
			return "Accepted"
		}
		return values["string"]
	}
	for _, p := range declared {
		if p == "/registrations/-" {
			continue // one registration per referral; added above
		}
		o := "replace"
		if strings.HasSuffix(p, "/-") {
			o = "add"
		}
		r := e.patch(id, []any{op(o, p, valueFor(p))})
		require.Equal(t, http.StatusNoContent, r.status, "%s: %s", p, r.raw)
	}
}
