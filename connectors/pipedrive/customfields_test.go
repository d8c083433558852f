package pipedrive_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
	"github.com/cosell-mcp/cosell-mcp/connectors/pipedrive/sandbox"
)

// --- deal fields and custom fields ----------------------------------------

// fieldsByName lists the deal fields through the client, keyed by name.
func fieldsByName(t *testing.T, e *env) map[string]pipedrive.DealField {
	t.Helper()
	fields, err := e.c.ListDealFields(t.Context())
	require.NoError(t, err)
	out := map[string]pipedrive.DealField{}
	for _, f := range fields {
		out[f.FieldName] = f
	}
	return out
}

func TestListDealFields(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	fields, err := e.c.ListDealFields(t.Context())
	require.NoError(t, err)

	r := e.last()
	assert.Equal(t, http.MethodGet, r.Method)
	assert.Equal(t, "/api/v2/dealFields", r.Path)
	assert.Equal(t, url.Values{"limit": {"500"}}, r.Query)
	assert.Empty(t, r.Body)
	assert.Len(t, e.requests(), 1, "every field fits one page of 500")

	raw := e.rawList("/api/v2/dealFields", url.Values{"limit": {"500"}})
	require.Len(t, fields, len(raw))
	for i := range raw {
		assertDecoded(t, raw[i], fields[i])
	}

	byName := map[string]pipedrive.DealField{}
	var custom []string
	for _, f := range fields {
		byName[f.FieldName] = f
		if f.IsCustomField {
			custom = append(custom, f.FieldName)
			assert.Regexp(t, `^[0-9a-f]{40}$`, f.FieldCode)
		}
	}
	assert.Equal(t, []string{"Partner Center referral ID", "Co-sell motion", "Azure consumption (ACR)", "Microsoft seller",
		"Solution areas", "Partner Center submission date", "Licensed seats"}, custom)

	motion := byName["Co-sell motion"]
	assert.Equal(t, "enum", motion.FieldType)
	assert.Equal(t, []pipedrive.FieldOption{{ID: 27, Label: "Partner-led"}, {ID: 28, Label: "Microsoft-led"}, {ID: 29, Label: "Joint"}}, motion.Options)
	o, ok := motion.Option("  joint ")
	assert.True(t, ok)
	assert.Equal(t, int64(29), o.ID)
	_, ok = motion.Option("Customer-led")
	assert.False(t, ok)
	o, ok = motion.OptionByID(28)
	assert.True(t, ok)
	assert.Equal(t, "Microsoft-led", o.Label)
	_, ok = motion.OptionByID(31)
	assert.False(t, ok)

	areas := byName["Solution areas"]
	assert.Equal(t, "set", areas.FieldType)
	assert.Len(t, areas.Options, 6)

	acr := byName["Azure consumption (ACR)"]
	assert.Equal(t, "monetary", acr.FieldType)
	assert.Equal(t, []pipedrive.Subfield{
		{FieldCode: "value", FieldName: "Amount of Azure consumption (ACR)", FieldType: "double"},
		{FieldCode: "currency", FieldName: "Currency of Azure consumption (ACR)", FieldType: "varchar"},
	}, acr.Subfields)
	assert.Nil(t, acr.Options)

	status := byName["Status"]
	assert.False(t, status.IsCustomField)
	assert.Equal(t, "status", status.FieldCode)
	won, ok := status.Option("Won")
	assert.True(t, ok)
	assert.Equal(t, pipedrive.FieldOption{Key: "won", Label: "Won"}, won, "built-in options have string ids")
	_, ok = status.OptionByID(0)
	assert.False(t, ok, "a string-keyed option has no integer id")

	assert.True(t, byName["Next activity"].IsOptionalResponseField)
	assert.False(t, byName["Title"].IsOptionalResponseField)
}

func TestListDealFieldsWalksEveryPage(t *testing.T) {
	// The sandbox serves pages of 4 whatever limit the client asks for.
	small := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			q := r.URL.Query()
			q.Set("limit", "4")
			r.URL.RawQuery = q.Encode()
			h.ServeHTTP(w, r)
		})
	}
	e := newEnv(t, sandbox.Options{}, small)
	fields, err := e.c.ListDealFields(t.Context())
	require.NoError(t, err)

	all := newEnv(t, sandbox.Options{}, nil)
	want, err := all.c.ListDealFields(t.Context())
	require.NoError(t, err)
	require.Equal(t, want, fields)

	reqs := e.requests()
	assert.Len(t, reqs, (len(want)+3)/4, "one request per page")
	assert.Empty(t, reqs[0].Query.Get("cursor"))
	cursors := map[string]bool{}
	for _, r := range reqs[1:] {
		c := r.Query.Get("cursor")
		assert.NotEmpty(t, c)
		assert.False(t, cursors[c], "no page twice")
		cursors[c] = true
		assert.Equal(t, "500", r.Query.Get("limit"))
	}
}

func TestListDealFieldsFails(t *testing.T) {
	t.Run("unauthorized", func(t *testing.T) {
		e := newEnv(t, sandbox.Options{Token: "other"}, nil)
		fields, err := e.c.ListDealFields(t.Context())
		assert.Nil(t, fields)
		upstreamErr(t, err, http.StatusUnauthorized)
	})

	t.Run("a later page fails", func(t *testing.T) {
		failSecond := func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Query().Get("cursor") != "" {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusServiceUnavailable)
					_, _ = w.Write([]byte(`{"success":false,"error":"Service unavailable","error_info":"x","data":null,"additional_data":null}`))
					return
				}
				q := r.URL.Query()
				q.Set("limit", "10")
				r.URL.RawQuery = q.Encode()
				h.ServeHTTP(w, r)
			})
		}
		e := newEnv(t, sandbox.Options{}, failSecond)
		fields, err := e.c.ListDealFields(t.Context())
		assert.Nil(t, fields, "no partial list")
		ue := upstreamErr(t, err, http.StatusServiceUnavailable)
		assert.Equal(t, "Service unavailable", ue.Message)
		assert.Len(t, e.requests(), 2)
	})

	t.Run("malformed option id", func(t *testing.T) {
		c := scripted(t, http.StatusOK, `{"success":true,"data":[{"field_name":"x","field_code":"x","field_type":"enum",
			"is_custom_field":true,"is_optional_response_field":false,"options":[{"id":true,"label":"y"}]}],"additional_data":{"next_cursor":null}}`)
		fields, err := c.ListDealFields(t.Context())
		assert.Nil(t, fields)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "unexpected data shape")
		assert.Contains(t, err.Error(), "neither an integer nor a string")
	})
}

func TestFieldOptionJSON(t *testing.T) {
	in := `[{"id":27,"label":"Partner-led"},{"id":"won","label":"Won","color":"green"},{"id":null,"label":"none"}]`
	var opts []pipedrive.FieldOption
	require.NoError(t, json.Unmarshal([]byte(in), &opts))
	assert.Equal(t, []pipedrive.FieldOption{{ID: 27, Label: "Partner-led"}, {Key: "won", Label: "Won", Color: "green"}, {Label: "none"}}, opts)
	out, err := json.Marshal(opts[:2])
	require.NoError(t, err)
	assert.JSONEq(t, `[{"id":27,"label":"Partner-led"},{"id":"won","label":"Won","color":"green"}]`, string(out))

	for _, bad := range []string{`{"id":1.5,"label":"x"}`, `{"id":[1],"label":"x"}`, `{"id":1,"label":2}`, `"x"`} {
		var o pipedrive.FieldOption
		assert.Error(t, json.Unmarshal([]byte(bad), &o), bad)
	}
}

func TestDealCustomFieldsRoundTrip(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	ctx := t.Context()
	f := fieldsByName(t, e)
	referral, motion, acr := f["Partner Center referral ID"].FieldCode, f["Co-sell motion"].FieldCode, f["Azure consumption (ACR)"].FieldCode
	areas, date, seats, seller := f["Solution areas"].FieldCode, f["Partner Center submission date"].FieldCode, f["Licensed seats"].FieldCode, f["Microsoft seller"].FieldCode
	joint, _ := f["Co-sell motion"].Option("Joint")

	d, err := e.c.AddDeal(ctx, pipedrive.DealInput{
		Title: ptr("Relecloud — Azure OpenAI pilot"), Currency: ptr("EUR"),
		CustomFields: map[string]any{
			referral: "c0ffee00-1234-4abc-8def-0123456789ab",
			motion:   joint.ID,
			acr:      pipedrive.MonetaryValue{Value: 4200},
			areas:    []int64{32, 33},
			date:     "2026-02-20",
			seats:    40.0,
		},
	})
	require.NoError(t, err)

	req := e.last()
	assert.JSONEq(t, fmt.Sprintf(`{"title":"Relecloud — Azure OpenAI pilot","currency":"EUR","custom_fields":{
		%q:"c0ffee00-1234-4abc-8def-0123456789ab",%q:29,%q:{"value":4200},%q:[32,33],%q:"2026-02-20",%q:40}}`,
		referral, motion, acr, areas, date, seats), string(req.Body), "the custom fields go out keyed by code")

	wantRaw := map[string]string{
		referral: `"c0ffee00-1234-4abc-8def-0123456789ab"`,
		motion:   `29`,
		acr:      `{"value":4200,"currency":"EUR"}`,
		areas:    `[32,33]`,
		date:     `"2026-02-20"`,
		seats:    `40`,
		seller:   `null`,
	}
	require.Len(t, d.CustomFields, len(wantRaw), "every custom field is on the deal")
	for code, want := range wantRaw {
		assert.JSONEq(t, want, string(d.CustomFields[code]), code)
	}
	var money pipedrive.MonetaryValue
	require.NoError(t, json.Unmarshal(d.CustomFields[acr], &money))
	assert.Equal(t, pipedrive.MonetaryValue{Value: 4200, Currency: "EUR"}, money, "the currency defaults to the deal's")

	got, err := e.c.GetDeal(ctx, d.ID)
	require.NoError(t, err)
	assert.Equal(t, d, got)
	assertDecoded(t, e.rawObject(fmt.Sprintf("/api/v2/deals/%d", d.ID)), got)

	t.Run("update sets and clears", func(t *testing.T) {
		u, err := e.c.UpdateDeal(ctx, d.ID, pipedrive.DealInput{CustomFields: map[string]any{
			motion: nil,
			seller: "Rafael Mendes",
			acr:    pipedrive.MonetaryValue{Value: 99.5, Currency: "USD"},
		}})
		require.NoError(t, err)
		assert.JSONEq(t, fmt.Sprintf(`{"custom_fields":{%q:null,%q:"Rafael Mendes",%q:{"value":99.5,"currency":"USD"}}}`, motion, seller, acr),
			string(e.last().Body), "nil is sent as null")
		assert.Equal(t, "null", string(u.CustomFields[motion]))
		assert.JSONEq(t, `"Rafael Mendes"`, string(u.CustomFields[seller]))
		assert.JSONEq(t, `{"value":99.5,"currency":"USD"}`, string(u.CustomFields[acr]))
		assert.JSONEq(t, `[32,33]`, string(u.CustomFields[areas]), "fields not sent keep their values")
		assert.Equal(t, "Relecloud — Azure OpenAI pilot", u.Title)
	})

	t.Run("no custom_fields without values", func(t *testing.T) {
		_, err := e.c.UpdateDeal(ctx, d.ID, pipedrive.DealInput{Title: ptr("Relecloud — AOAI pilot"), CustomFields: map[string]any{}})
		require.NoError(t, err)
		assert.JSONEq(t, `{"title":"Relecloud — AOAI pilot"}`, string(e.last().Body))
	})

	t.Run("invalid values are rejected", func(t *testing.T) {
		for _, tc := range []struct {
			cf  map[string]any
			msg string
		}{
			{map[string]any{areas: []int64{}}, fmt.Sprintf("Custom field 'Solution areas' (%s) must not be an empty array; send null to clear it", areas)},
			{map[string]any{motion: "Joint"}, fmt.Sprintf("Custom field 'Co-sell motion' (%s) must be the integer id of one of its options: 27 (Partner-led), 28 (Microsoft-led), 29 (Joint)", motion)},
			{map[string]any{motion: 99}, fmt.Sprintf("Custom field 'Co-sell motion' (%s) has no option with id 99; options: 27 (Partner-led), 28 (Microsoft-led), 29 (Joint)", motion)},
			{map[string]any{seats: "40"}, fmt.Sprintf("Custom field 'Licensed seats' (%s) must be a number", seats)},
			{map[string]any{"Microsoft seller": "Aiko Tanaka"}, "Custom field 'Microsoft seller' does not exist; custom fields are keyed by the field_code from GET /api/v2/dealFields"},
		} {
			u, err := e.c.UpdateDeal(ctx, d.ID, pipedrive.DealInput{CustomFields: tc.cf})
			assert.Nil(t, u)
			ue := upstreamErr(t, err, http.StatusBadRequest)
			assert.Equal(t, tc.msg, ue.Message)
		}
	})
}

func TestDealReadsSelectCustomFields(t *testing.T) {
	e := newEnv(t, sandbox.Options{}, nil)
	ctx := t.Context()
	f := fieldsByName(t, e)
	referral, motion, areas := f["Partner Center referral ID"].FieldCode, f["Co-sell motion"].FieldCode, f["Solution areas"].FieldCode

	deals, _, err := e.c.ListDeals(ctx, pipedrive.ListDealsParams{PipelineID: 2, Limit: 1})
	require.NoError(t, err)
	require.Len(t, deals, 1)
	id := deals[0].ID
	full := deals[0].CustomFields
	require.Len(t, full, 7)

	t.Run("get with keys and labels", func(t *testing.T) {
		d, err := e.c.GetDealWith(ctx, id, pipedrive.GetDealParams{
			IncludeFields: []string{pipedrive.IncludeNextActivity}, CustomFields: []string{motion, areas, referral}, IncludeOptionLabels: true,
		})
		require.NoError(t, err)
		assert.Equal(t, url.Values{
			"include_fields": {"next_activity_id"}, "custom_fields": {strings.Join([]string{motion, areas, referral}, ",")},
			"include_option_labels": {"true"},
		}, e.last().Query)
		assert.Len(t, d.CustomFields, 3)
		assert.Equal(t, full[referral], d.CustomFields[referral])

		type labelled struct {
			ID    int64  `json:"id"`
			Label string `json:"label"`
		}
		var m labelled
		require.NoError(t, json.Unmarshal(d.CustomFields[motion], &m))
		var rawID int64
		require.NoError(t, json.Unmarshal(full[motion], &rawID))
		opt, ok := f["Co-sell motion"].OptionByID(rawID)
		require.True(t, ok)
		assert.Equal(t, labelled{rawID, opt.Label}, m)

		var set []labelled
		require.NoError(t, json.Unmarshal(d.CustomFields[areas], &set))
		var rawIDs []int64
		require.NoError(t, json.Unmarshal(full[areas], &rawIDs))
		require.Len(t, set, len(rawIDs))
		for i, s := range set {
			opt, ok := f["Solution areas"].OptionByID(rawIDs[i])
			require.True(t, ok)
			assert.Equal(t, labelled{rawIDs[i], opt.Label}, s)
		}
	})

	t.Run("get without options sends nothing extra", func(t *testing.T) {
		d, err := e.c.GetDealWith(ctx, id, pipedrive.GetDealParams{})
		require.NoError(t, err)
		assert.Empty(t, e.last().Query)
		assert.Equal(t, full, d.CustomFields)
	})

	t.Run("list with keys", func(t *testing.T) {
		deals, _, err := e.c.ListDeals(ctx, pipedrive.ListDealsParams{PipelineID: 2, Limit: 5, CustomFields: []string{referral}, IncludeOptionLabels: true})
		require.NoError(t, err)
		require.Len(t, deals, 5)
		assert.Equal(t, referral, e.last().Query.Get("custom_fields"))
		assert.Equal(t, "true", e.last().Query.Get("include_option_labels"))
		raw := e.rawList("/api/v2/deals", url.Values{"pipeline_id": {"2"}, "limit": {"5"}, "custom_fields": {referral}})
		for i, d := range deals {
			assert.Len(t, d.CustomFields, 1)
			assertDecoded(t, raw[i], d)
		}
	})

	t.Run("too many or unknown keys", func(t *testing.T) {
		keys := make([]string, pipedrive.MaxCustomFieldKeys+1)
		for i := range keys {
			keys[i] = fmt.Sprintf("%040x", i)
		}
		_, err := e.c.GetDealWith(ctx, id, pipedrive.GetDealParams{CustomFields: keys})
		ue := upstreamErr(t, err, http.StatusBadRequest)
		assert.Equal(t, "The parameter 'custom_fields' must contain at most 15 keys", ue.Message)

		_, _, err = e.c.ListDeals(ctx, pipedrive.ListDealsParams{CustomFields: []string{"title"}})
		ue = upstreamErr(t, err, http.StatusBadRequest)
		assert.Equal(t, "The parameter 'custom_fields' contains 'title', which is not a custom deal field key", ue.Message)
	})
}
