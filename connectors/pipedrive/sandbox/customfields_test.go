package sandbox

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var customCodes = []string{cfReferralID, cfCoSellMotion, cfAzureACR, cfMicrosoftSell, cfSolutionAreas, cfSubmissionDate, cfLicensedSeats}

// specFieldTypes reads the field_type enum of getDealFields from the spec.
func specFieldTypes(t *testing.T) []string {
	t.Helper()
	doc, _ := loadSpec(t, false)
	op := doc.Paths.Value("/dealFields").Get
	require.NotNil(t, op)
	schema := op.Responses.Status(http.StatusOK).Value.Content.Get("application/json").Schema.Value
	item := schema.Properties["data"].Value.Items.Value
	var out []string
	for _, v := range item.Properties["field_type"].Value.Enum {
		out = append(out, v.(string))
	}
	require.NotEmpty(t, out)
	return out
}

func fieldByCode(fields []map[string]any, code string) map[string]any {
	for _, f := range fields {
		if f["field_code"] == code {
			return f
		}
	}
	return nil
}

func TestDealFieldsList(t *testing.T) {
	e := newEnv(t, Options{})
	types := specFieldTypes(t)

	r := e.do("GET", "/api/v2/dealFields", nil)
	fields := r.list(t)
	require.Equal(t, "", r.nextCursor(t), "every field fits the default page of 100")
	require.Equal(t, "10", r.header.Get("x-token-cost"))
	require.Len(t, fields, len(dealFieldDefs()))

	codes := map[string]bool{}
	var custom, optional []string
	for _, f := range fields {
		code := f["field_code"].(string)
		require.False(t, codes[code], "duplicate field_code %s", code)
		codes[code] = true
		for _, k := range []string{"field_name", "field_code", "field_type", "is_custom_field", "is_optional_response_field", "options", "subfields"} {
			require.Contains(t, f, k, code)
		}
		require.NotEmpty(t, f["field_name"])
		require.Contains(t, types, f["field_type"], code)
		require.NotContains(t, f, "ui_visibility", "only with include_fields")
		switch f["field_type"] {
		case "enum", "set", "status", "visible_to":
			require.NotEmpty(t, f["options"], code)
		default:
			require.Nil(t, f["options"], "%s: options are null for fields without options", code)
		}
		if f["field_type"] == "monetary" {
			require.Equal(t, []any{"value", "currency"}, []any{
				f["subfields"].([]any)[0].(map[string]any)["field_code"], f["subfields"].([]any)[1].(map[string]any)["field_code"]})
		} else {
			require.Nil(t, f["subfields"], code)
		}
		if f["is_custom_field"] == true {
			custom = append(custom, code)
			require.Regexp(t, `^[0-9a-f]{40}$`, code)
		}
		if f["is_optional_response_field"] == true {
			optional = append(optional, code)
		}
	}
	for _, std := range []string{"id", "title", "value", "owner_id", "org_id", "person_id", "pipeline_id", "stage_id",
		"status", "expected_close_date", "probability", "lost_reason", "visible_to", "add_time", "update_time", "won_time", "lost_time", "close_time"} {
		require.True(t, codes[std], "standard field %s", std)
		require.Equal(t, false, fieldByCode(fields, std)["is_custom_field"])
	}
	require.Equal(t, customCodes, custom)
	require.Equal(t, dealIncludeFields, optional, "the optional fields are what include_fields of GET /deals can add")

	t.Run("seeded custom fields", func(t *testing.T) {
		want := map[string]struct{ name, typ string }{
			cfReferralID:     {"Partner Center referral ID", "varchar"},
			cfCoSellMotion:   {"Co-sell motion", "enum"},
			cfAzureACR:       {"Azure consumption (ACR)", "monetary"},
			cfMicrosoftSell:  {"Microsoft seller", "varchar"},
			cfSolutionAreas:  {"Solution areas", "set"},
			cfSubmissionDate: {"Partner Center submission date", "date"},
			cfLicensedSeats:  {"Licensed seats", "double"},
		}
		for code, w := range want {
			f := fieldByCode(fields, code)
			require.Equal(t, w.name, f["field_name"])
			require.Equal(t, w.typ, f["field_type"])
			require.Equal(t, false, f["is_optional_response_field"])
		}
		require.Equal(t, []any{
			map[string]any{"id": 27.0, "label": "Partner-led"},
			map[string]any{"id": 28.0, "label": "Microsoft-led"},
			map[string]any{"id": 29.0, "label": "Joint"},
		}, fieldByCode(fields, cfCoSellMotion)["options"])
		var areas []string
		for _, o := range fieldByCode(fields, cfSolutionAreas)["options"].([]any) {
			areas = append(areas, o.(map[string]any)["label"].(string))
			require.IsType(t, 0.0, o.(map[string]any)["id"], "custom option ids are integers")
		}
		require.Equal(t, []string{"Azure Infrastructure", "Data & AI", "Digital & App Innovation", "Modern Work", "Business Applications", "Security"}, areas)
		for _, o := range fieldByCode(fields, "status")["options"].([]any) {
			require.IsType(t, "", o.(map[string]any)["id"], "built-in option ids are strings")
		}
	})

	t.Run("pages", func(t *testing.T) {
		paged := e.all("/api/v2/dealFields?limit=7")
		require.Equal(t, fields, paged)
		first := e.do("GET", "/api/v2/dealFields?limit=7", nil)
		require.Len(t, first.list(t), 7)
		require.NotEmpty(t, first.nextCursor(t))
		second := e.do("GET", "/api/v2/dealFields?limit=7&cursor="+first.nextCursor(t), nil).list(t)
		require.Equal(t, fields[7:14], second)
	})

	t.Run("include_fields", func(t *testing.T) {
		all := e.do("GET", "/api/v2/dealFields?include_fields=ui_visibility,important_fields,required_fields", nil).list(t)
		for _, f := range all {
			require.Contains(t, f, "ui_visibility")
			require.Contains(t, f, "important_fields")
			require.Contains(t, f, "required_fields")
		}
		ref := fieldByCode(all, cfReferralID)
		require.Equal(t, map[string]any{"enabled": true, "stage_ids": []any{7.0, 8.0, 9.0, 10.0, 11.0}}, ref["important_fields"])
		require.Equal(t, true, ref["ui_visibility"].(map[string]any)["add_visible_flag"])
		require.Equal(t, false, fieldByCode(all, "id")["ui_visibility"].(map[string]any)["add_visible_flag"])

		one := e.do("GET", "/api/v2/dealFields?include_fields=important_fields", nil).list(t)
		require.Contains(t, one[0], "important_fields")
		require.NotContains(t, one[0], "ui_visibility")
		require.NotContains(t, one[0], "required_fields")
	})

	t.Run("bad parameters", func(t *testing.T) {
		for path, msg := range map[string]string{
			"/api/v2/dealFields?limit=0":                   "The parameter 'limit' must be between 1 and 500",
			"/api/v2/dealFields?limit=501":                 "The parameter 'limit' must be between 1 and 500",
			"/api/v2/dealFields?limit=ten":                 "The parameter 'limit' must be an integer",
			"/api/v2/dealFields?cursor=garbage":            "The parameter 'cursor' is invalid",
			"/api/v2/dealFields?include_fields=everything": "The parameter 'include_fields' must be one of: ui_visibility, important_fields, required_fields",
		} {
			require.Equal(t, msg, e.do("GET", path, nil).failed(t, http.StatusBadRequest), path)
		}
		// A cursor of another list's sort order is not a dealFields cursor.
		deals := e.do("GET", "/api/v2/deals?limit=1&sort_by=update_time", nil)
		require.Equal(t, "The parameter 'cursor' is invalid",
			e.do("GET", "/api/v2/dealFields?cursor="+deals.nextCursor(t), nil).failed(t, http.StatusBadRequest))
		e.doToken("GET", "/api/v2/dealFields", nil, "nope").failed(t, http.StatusUnauthorized)
	})
}

var guidRe = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestSeededCustomFieldValues(t *testing.T) {
	e := newEnv(t, Options{})
	withValues := map[string]int{}
	coSell := 0
	for _, d := range e.all("/api/v2/deals?limit=500&status=open,won,lost,deleted") {
		cf, isMap := d["custom_fields"].(map[string]any)
		require.True(t, isMap)
		require.Len(t, cf, len(customCodes), "every custom field is on every deal, null when unset")
		for _, code := range customCodes {
			require.Contains(t, cf, code)
			if cf[code] != nil {
				withValues[code]++
			}
		}
		if num(d["pipeline_id"]) == 2 {
			coSell++
			require.Regexp(t, guidRe, cf[cfReferralID], "co-sell deals carry their referral id")
			require.NotNil(t, cf[cfCoSellMotion])
			require.NotNil(t, cf[cfSubmissionDate])
		}
		if v := cf[cfCoSellMotion]; v != nil {
			require.Contains(t, []any{27.0, 28.0, 29.0}, v)
		}
		if v := cf[cfSolutionAreas]; v != nil {
			ids := v.([]any)
			require.NotEmpty(t, ids)
			for _, id := range ids {
				require.GreaterOrEqual(t, id, 31.0)
				require.LessOrEqual(t, id, 36.0)
			}
		}
		if v := cf[cfAzureACR]; v != nil {
			m := v.(map[string]any)
			require.Len(t, m, 2)
			require.Positive(t, m["value"])
			require.Equal(t, d["currency"], m["currency"])
		}
		if v := cf[cfSubmissionDate]; v != nil {
			day, err := time.Parse(dateLayout, v.(string))
			require.NoError(t, err)
			require.False(t, day.After(testNow))
		}
		if v := cf[cfLicensedSeats]; v != nil {
			require.Positive(t, v)
		}
		if v := cf[cfMicrosoftSell]; v != nil {
			require.Contains(t, microsoftSellers, v)
		}
	}
	require.Greater(t, coSell, 30)
	for _, code := range customCodes {
		require.Greater(t, withValues[code], 10, "field %s is seeded on a fair number of deals", code)
		require.Less(t, withValues[code], 200, "field %s is not on every deal", code)
	}

	t.Run("deterministic", func(t *testing.T) {
		other := newEnv(t, Options{})
		require.Equal(t, string(e.do("GET", "/api/v2/deals/1", nil).raw), string(other.do("GET", "/api/v2/deals/1", nil).raw))
	})
}

// coSellDeal returns the lowest id of a deal of the co-sell pipeline and its custom fields.
func coSellDeal(t *testing.T, e *env) (int, map[string]any) {
	t.Helper()
	d := e.do("GET", "/api/v2/deals?pipeline_id=2&limit=1", nil).list(t)[0]
	return num(d["id"]), d["custom_fields"].(map[string]any)
}

func TestDealCustomFieldsQuery(t *testing.T) {
	e := newEnv(t, Options{})
	id, all := coSellDeal(t, e)
	path := fmt.Sprintf("/api/v2/deals/%d", id)

	t.Run("only the asked keys", func(t *testing.T) {
		d := e.do("GET", path+"?custom_fields="+cfReferralID+",%20"+cfCoSellMotion+","+cfReferralID, nil).obj(t)
		require.Equal(t, map[string]any{cfReferralID: all[cfReferralID], cfCoSellMotion: all[cfCoSellMotion]}, d["custom_fields"])
		plain := e.do("GET", path, nil).obj(t)
		delete(plain, "custom_fields")
		delete(d, "custom_fields")
		require.Equal(t, plain, d, "the other fields are unaffected")

		list := e.do("GET", "/api/v2/deals?pipeline_id=2&limit=3&custom_fields="+cfAzureACR, nil).list(t)
		require.Len(t, list, 3)
		for _, d := range list {
			require.Len(t, d["custom_fields"], 1)
			require.Contains(t, d["custom_fields"], cfAzureACR)
		}
	})

	t.Run("option labels", func(t *testing.T) {
		d := e.do("GET", path+"?include_option_labels=true", nil).obj(t)
		cf := d["custom_fields"].(map[string]any)
		labels := map[float64]string{27: "Partner-led", 28: "Microsoft-led", 29: "Joint"}
		motion := all[cfCoSellMotion].(float64)
		require.Equal(t, map[string]any{"id": motion, "label": labels[motion]}, cf[cfCoSellMotion])
		areas := cf[cfSolutionAreas].([]any)
		require.Len(t, areas, len(all[cfSolutionAreas].([]any)))
		for i, a := range areas {
			require.Equal(t, all[cfSolutionAreas].([]any)[i], a.(map[string]any)["id"])
			require.NotEmpty(t, a.(map[string]any)["label"])
		}
		require.Equal(t, all[cfReferralID], cf[cfReferralID], "other types read as they are")

		plain := e.do("GET", path+"?include_option_labels=false", nil).obj(t)
		require.Equal(t, all, plain["custom_fields"])

		list := e.do("GET", "/api/v2/deals?pipeline_id=2&limit=5&include_option_labels=true&custom_fields="+cfCoSellMotion, nil).list(t)
		for _, d := range list {
			require.Contains(t, labels, d["custom_fields"].(map[string]any)[cfCoSellMotion].(map[string]any)["id"])
		}
	})

	t.Run("with include_fields", func(t *testing.T) {
		d := e.do("GET", path+"?include_fields=activities_count&custom_fields="+cfMicrosoftSell, nil).obj(t)
		require.Contains(t, d, "activities_count")
		require.Equal(t, map[string]any{cfMicrosoftSell: all[cfMicrosoftSell]}, d["custom_fields"])
	})

	t.Run("bad parameters", func(t *testing.T) {
		var sixteen []string
		for i := range 16 {
			sixteen = append(sixteen, fmt.Sprintf("%040x", i))
		}
		for q, msg := range map[string]string{
			"custom_fields=" + strings.Join(sixteen, ","):            "The parameter 'custom_fields' must contain at most 15 keys",
			"custom_fields=" + cfReferralID + ",title":               "The parameter 'custom_fields' contains 'title', which is not a custom deal field key",
			"custom_fields=0123456789abcdef0123456789abcdef01234567": "The parameter 'custom_fields' contains '0123456789abcdef0123456789abcdef01234567', which is not a custom deal field key",
			"include_option_labels=maybe":                            "The parameter 'include_option_labels' must be a boolean",
		} {
			require.Equal(t, msg, e.do("GET", path+"?"+q, nil).failed(t, http.StatusBadRequest), q)
			require.Equal(t, msg, e.do("GET", "/api/v2/deals?"+q, nil).failed(t, http.StatusBadRequest), q)
		}
		// 15 keys are fine, duplicates count once.
		keys := slices.Repeat(customCodes, 3)
		require.Len(t, e.do("GET", path+"?custom_fields="+url.QueryEscape(strings.Join(keys, ",")), nil).obj(t)["custom_fields"], len(customCodes))
	})
}

func TestDealCustomFieldsWrite(t *testing.T) {
	e := newEnv(t, Options{})

	t.Run("create with every type", func(t *testing.T) {
		d := e.do("POST", "/api/v2/deals", map[string]any{
			"title": "Woodgrove Bank — Sentinel SOC", "currency": "EUR",
			"custom_fields": map[string]any{
				cfReferralID:     "6f1d2c3b-1a2b-4c3d-8e4f-1234567890ab",
				cfCoSellMotion:   optJoint,
				cfAzureACR:       map[string]any{"value": 12500.5},
				cfMicrosoftSell:  "Aiko Tanaka",
				cfSolutionAreas:  []int{36, 32, 36},
				cfSubmissionDate: "2026-09-01",
				cfLicensedSeats:  250,
			},
		}).obj(t)
		require.Equal(t, map[string]any{
			cfReferralID:     "6f1d2c3b-1a2b-4c3d-8e4f-1234567890ab",
			cfCoSellMotion:   29.0,
			cfAzureACR:       map[string]any{"value": 12500.5, "currency": "EUR"},
			cfMicrosoftSell:  "Aiko Tanaka",
			cfSolutionAreas:  []any{36.0, 32.0},
			cfSubmissionDate: "2026-09-01",
			cfLicensedSeats:  250.0,
		}, d["custom_fields"], "the monetary currency defaults to the deal's; a set drops repeated ids")
		got := e.do("GET", fmt.Sprintf("/api/v2/deals/%d", num(d["id"])), nil).obj(t)
		require.Equal(t, d["custom_fields"], got["custom_fields"])
	})

	id, before := coSellDeal(t, e)
	path := fmt.Sprintf("/api/v2/deals/%d", id)

	t.Run("update merges", func(t *testing.T) {
		d := e.do("PATCH", path, map[string]any{"custom_fields": map[string]any{
			cfCoSellMotion: optMicrosoftLed,
			cfAzureACR:     map[string]any{"value": 900, "currency": "GBP"},
		}}).obj(t)
		want := map[string]any{}
		for k, v := range before {
			want[k] = v
		}
		want[cfCoSellMotion] = 28.0
		want[cfAzureACR] = map[string]any{"value": 900.0, "currency": "GBP"}
		require.Equal(t, want, d["custom_fields"], "keys not sent keep their values")
		require.Equal(t, ts(testNow), d["update_time"])
	})

	t.Run("null and empty text clear", func(t *testing.T) {
		d := e.do("PATCH", path, `{"custom_fields":{"`+cfSolutionAreas+`":null,"`+cfMicrosoftSell+`":"  ","`+cfAzureACR+`":null}}`).obj(t)
		cf := d["custom_fields"].(map[string]any)
		require.Nil(t, cf[cfSolutionAreas])
		require.Nil(t, cf[cfMicrosoftSell])
		require.Nil(t, cf[cfAzureACR])
		require.Equal(t, before[cfReferralID], cf[cfReferralID])
		require.Len(t, cf, len(customCodes), "a cleared field still reads as null")

		d = e.do("PATCH", path, `{"custom_fields":null}`).obj(t)
		require.Equal(t, cf, d["custom_fields"], "custom_fields: null changes nothing")
		d = e.do("PATCH", path, `{"custom_fields":{}}`).obj(t)
		require.Equal(t, cf, d["custom_fields"])
	})

	t.Run("invalid values", func(t *testing.T) {
		snapshot := e.do("GET", path, nil).obj(t)
		long := strings.Repeat("x", 256)
		options := "27 (Partner-led), 28 (Microsoft-led), 29 (Joint)"
		areas := "31 (Azure Infrastructure), 32 (Data & AI), 33 (Digital & App Innovation), 34 (Modern Work), 35 (Business Applications), 36 (Security)"
		money := `an object {"value": number, "currency": "3-letter code"}`
		for _, tc := range []struct {
			name string
			cf   string // the custom_fields member of the body
			msg  string
		}{
			{"not an object", `[1]`, "The field 'custom_fields' must be an object"},
			{"string", `"x"`, "The field 'custom_fields' must be an object"},
			{"unknown key", `{"0000000000000000000000000000000000000000":"x"}`,
				"Custom field '0000000000000000000000000000000000000000' does not exist; custom fields are keyed by the field_code from GET /api/v2/dealFields"},
			{"field name instead of code", `{"Microsoft seller":"x"}`,
				"Custom field 'Microsoft seller' does not exist; custom fields are keyed by the field_code from GET /api/v2/dealFields"},
			{"standard field", `{"title":"x"}`, "'title' is a standard deal field, not a custom field: set it at the top level of the body"},
			{"varchar number", `{"` + cfReferralID + `":12}`, "Custom field 'Partner Center referral ID' (" + cfReferralID + ") must be a string of at most 255 characters"},
			{"varchar too long", `{"` + cfMicrosoftSell + `":"` + long + `"}`, "Custom field 'Microsoft seller' (" + cfMicrosoftSell + ") must be a string of at most 255 characters"},
			{"double as string", `{"` + cfLicensedSeats + `":"250"}`, "Custom field 'Licensed seats' (" + cfLicensedSeats + ") must be a number"},
			{"double as bool", `{"` + cfLicensedSeats + `":true}`, "Custom field 'Licensed seats' (" + cfLicensedSeats + ") must be a number"},
			{"enum as string id", `{"` + cfCoSellMotion + `":"27"}`, "Custom field 'Co-sell motion' (" + cfCoSellMotion + ") must be the integer id of one of its options: " + options},
			{"enum as label", `{"` + cfCoSellMotion + `":"Joint"}`, "Custom field 'Co-sell motion' (" + cfCoSellMotion + ") must be the integer id of one of its options: " + options},
			{"enum fraction", `{"` + cfCoSellMotion + `":27.5}`, "Custom field 'Co-sell motion' (" + cfCoSellMotion + ") must be the integer id of one of its options: " + options},
			{"enum unknown option", `{"` + cfCoSellMotion + `":31}`, "Custom field 'Co-sell motion' (" + cfCoSellMotion + ") has no option with id 31; options: " + options},
			{"enum array", `{"` + cfCoSellMotion + `":[27]}`, "Custom field 'Co-sell motion' (" + cfCoSellMotion + ") must be the integer id of one of its options: " + options},
			{"set empty", `{"` + cfSolutionAreas + `":[]}`, "Custom field 'Solution areas' (" + cfSolutionAreas + ") must not be an empty array; send null to clear it"},
			{"set scalar", `{"` + cfSolutionAreas + `":31}`, "Custom field 'Solution areas' (" + cfSolutionAreas + ") must be an array of integer option ids of: " + areas},
			{"set comma string", `{"` + cfSolutionAreas + `":"31,32"}`, "Custom field 'Solution areas' (" + cfSolutionAreas + ") must be an array of integer option ids of: " + areas},
			{"set string ids", `{"` + cfSolutionAreas + `":["31"]}`, "Custom field 'Solution areas' (" + cfSolutionAreas + ") must be an array of integer option ids of: " + areas},
			{"set unknown option", `{"` + cfSolutionAreas + `":[31,27]}`, "Custom field 'Solution areas' (" + cfSolutionAreas + ") has no option with id 27; options: " + areas},
			{"monetary number", `{"` + cfAzureACR + `":500}`, "Custom field 'Azure consumption (ACR)' (" + cfAzureACR + ") must be " + money},
			{"monetary without value", `{"` + cfAzureACR + `":{"currency":"USD"}}`, "Custom field 'Azure consumption (ACR)' (" + cfAzureACR + ") must be " + money + " with a numeric value"},
			{"monetary string value", `{"` + cfAzureACR + `":{"value":"500"}}`, "Custom field 'Azure consumption (ACR)' (" + cfAzureACR + ") must be " + money + " with a numeric value"},
			{"monetary bad currency", `{"` + cfAzureACR + `":{"value":500,"currency":"dollars"}}`, "Custom field 'Azure consumption (ACR)' (" + cfAzureACR + ") must be " + money + " with a 3-letter ISO 4217 currency code"},
			{"monetary v1 subkey", `{"` + cfAzureACR + `":{"value":500,"amount":1}}`, "Custom field 'Azure consumption (ACR)' (" + cfAzureACR + ") must be " + money + ", not with 'amount'"},
			{"date format", `{"` + cfSubmissionDate + `":"01/09/2026"}`, "Custom field 'Partner Center submission date' (" + cfSubmissionDate + ") must be a date in the format YYYY-MM-DD"},
			{"date impossible", `{"` + cfSubmissionDate + `":"2026-02-30"}`, "Custom field 'Partner Center submission date' (" + cfSubmissionDate + ") must be a date in the format YYYY-MM-DD"},
			{"date number", `{"` + cfSubmissionDate + `":20260901}`, "Custom field 'Partner Center submission date' (" + cfSubmissionDate + ") must be a date in the format YYYY-MM-DD"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				// A valid change next to the bad one must not be applied either.
				body := `{"title":"Changed","custom_fields":` + tc.cf + `}`
				require.Equal(t, tc.msg, e.do("PATCH", path, body).failed(t, http.StatusBadRequest))
				require.Equal(t, tc.msg, e.do("POST", "/api/v2/deals", body).failed(t, http.StatusBadRequest))
			})
		}
		require.Equal(t, snapshot, e.do("GET", path, nil).obj(t), "rejected updates change nothing")
		require.Len(t, e.all("/api/v2/deals?limit=500"), 201, "rejected creates add nothing")
	})
}

func TestSearchDealsByCustomFields(t *testing.T) {
	e := newEnv(t, Options{})
	id, cf := coSellDeal(t, e)
	referral := cf[cfReferralID].(string)

	items := e.do("GET", "/api/v2/deals/search?fields=custom_fields&exact_match=true&term="+referral, nil).obj(t)["items"].([]any)
	require.Len(t, items, 1)
	item := items[0].(map[string]any)["item"].(map[string]any)
	require.Equal(t, id, num(item["id"]))
	require.Equal(t, []any{referral}, item["custom_fields"])

	// A prefix of the referral id finds it as well; the title alone does not.
	items = e.do("GET", "/api/v2/deals/search?fields=custom_fields&term="+referral[:8], nil).obj(t)["items"].([]any)
	require.NotEmpty(t, items)
	require.Empty(t, e.do("GET", "/api/v2/deals/search?fields=title&exact_match=true&term="+referral, nil).obj(t)["items"])

	// Updated values are searchable at once, cleared ones no longer.
	e.do("PATCH", fmt.Sprintf("/api/v2/deals/%d", id), map[string]any{"custom_fields": map[string]any{cfReferralID: "REF-ZX-0042"}}).obj(t)
	items = e.do("GET", "/api/v2/deals/search?term=REF-ZX-0042", nil).obj(t)["items"].([]any)
	require.Len(t, items, 1)
	require.Empty(t, e.do("GET", "/api/v2/deals/search?fields=custom_fields&exact_match=true&term="+referral, nil).obj(t)["items"])
}
