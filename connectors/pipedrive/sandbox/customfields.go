package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Deal fields: the schema GET /api/v2/dealFields describes, and the custom
// fields a deal carries in its custom_fields object.
//
// Value encodings inside custom_fields follow Pipedrive API v2 (the v2 spec
// only says that keys are the 40-character field codes and that null clears
// a value; the rest is the documented v2 behaviour, see the migration guide
// "Custom Fields" section and the dealFields schema):
//
//	varchar, text   a string ("" clears the value, as the Pipedrive UI stores no empty text)
//	double          a JSON number (v2 no longer coerces strings to numbers)
//	monetary        an object {"value": number, "currency": "EUR"} — the field's subfields
//	                are `value` and `currency`; on write currency may be left out and then
//	                defaults to the deal's currency
//	date            a "YYYY-MM-DD" string
//	enum            the integer id of one option
//	set             a non-empty array of integer option ids ([] is rejected; null clears)
//
// With include_option_labels=true, enum values read as {"id", "label"} and set values as
// [{"id", "label"}, ...]. Every custom field appears on a deal read, null when unset.

// maxCustomFieldKeys is the documented limit of the custom_fields query parameter.
const maxCustomFieldKeys = 15

// fieldOption is one option of an enum or set field. ID is an int for custom
// fields and a string for built-in ones (status, visible_to), as in the spec.
type fieldOption struct {
	ID    any    `json:"id"`
	Label string `json:"label"`
}

type subfield struct {
	FieldCode string `json:"field_code"`
	FieldName string `json:"field_name"`
	FieldType string `json:"field_type"`
}

// dealField is one deal field: a standard one (keyed by its v2 property name)
// or a custom one (keyed by a 40-hex-character code).
type dealField struct {
	ordinal     int // stable position, the pagination key
	Code        string
	Name        string
	Type        string
	Description string
	Custom      bool
	Optional    bool // returned on deals only when include_fields asks for it
	Options     []fieldOption
	Subfields   []subfield
	// ImportantStages are the stages whose deals highlight the field in the UI.
	ImportantStages []int
}

// optionLabel returns the label of a custom field's option id.
func (f *dealField) optionLabel(id int) (string, bool) {
	for _, o := range f.Options {
		if n, isInt := o.ID.(int); isInt && n == id {
			return o.Label, true
		}
	}
	return "", false
}

// optionList renders the options for an error message: `101 (Partner-led), 102 (...)`.
func (f *dealField) optionList() string {
	parts := make([]string, 0, len(f.Options))
	for _, o := range f.Options {
		parts = append(parts, fmt.Sprintf("%v (%s)", o.ID, o.Label))
	}
	return strings.Join(parts, ", ")
}

// Codes of the seeded custom deal fields (sha1 of "treyresearch:deal:<name>",
// fixed so that they are the same for every seed).
const (
	cfReferralID     = "846dd53e4619d38fc16cfa06490d9c16468f95e5" // Partner Center referral ID (varchar)
	cfCoSellMotion   = "2247e5fffd9c7d479b222701b19fef80efe6a3f6" // Co-sell motion (enum)
	cfAzureACR       = "1fb473d87c467ef064338544b151e2cfa50df277" // Azure consumption (ACR) (monetary)
	cfMicrosoftSell  = "84457dce1a2df79022c16635cd865055e0a555b4" // Microsoft seller (varchar)
	cfSolutionAreas  = "41f189246ded9754cd3c3cb60d2a472ff18de40c" // Solution areas (set)
	cfSubmissionDate = "3c7a10edec9c23f1a664bd032559effa0c0a52cd" // Partner Center submission date (date)
	cfLicensedSeats  = "bc430196196557a0896a3ae4588a997e766b94fa" // Licensed seats (double)
)

// Option ids of the seeded enum and set fields. Pipedrive numbers options
// company-wide, so the two fields' ids do not overlap.
const (
	optPartnerLed   = 27
	optMicrosoftLed = 28
	optJoint        = 29
)

var solutionAreaOptions = []fieldOption{
	{31, "Azure Infrastructure"}, {32, "Data & AI"}, {33, "Digital & App Innovation"},
	{34, "Modern Work"}, {35, "Business Applications"}, {36, "Security"},
}

func monetarySubfields(name string) []subfield {
	return []subfield{
		{FieldCode: "value", FieldName: "Amount of " + name, FieldType: "double"},
		{FieldCode: "currency", FieldName: "Currency of " + name, FieldType: "varchar"},
	}
}

// dealFieldDefs returns the company's deal fields in display order: the
// standard fields (the optional ones are exactly include_fields of GET
// /deals), then the custom fields of a Microsoft co-sell partner.
func dealFieldDefs() []*dealField {
	std := func(code, name, typ, desc string) *dealField {
		return &dealField{Code: code, Name: name, Type: typ, Description: desc}
	}
	opt := func(code, name, typ, desc string) *dealField {
		f := std(code, name, typ, desc)
		f.Optional = true
		return f
	}
	value := std("value", "Value", "monetary", "The monetary value of the deal")
	value.Subfields = monetarySubfields("Value")
	value.ImportantStages = []int{5, 6, 10, 11}
	status := std("status", "Status", "status", "The status of the deal")
	status.Options = []fieldOption{{"open", "Open"}, {"won", "Won"}, {"lost", "Lost"}, {"deleted", "Deleted"}}
	visible := std("visible_to", "Visible to", "visible_to", "The visibility of the deal")
	visible.Options = []fieldOption{{"1", "Owner & followers"}, {"3", "Entire company"}, {"5", "Owner's visibility group"}, {"7", "Owner's visibility group and sub-groups"}}

	fields := []*dealField{
		std("id", "ID", "int", "The ID of the deal"),
		std("title", "Title", "varchar", "The title or name of the deal"),
		std("creator_user_id", "Creator", "user", "The user who created the deal"),
		std("owner_id", "Owner", "user", "The user who owns the deal"),
		value,
		std("probability", "Probability", "double", "The success probability percentage of the deal"),
		std("org_id", "Organization", "org", "The organization linked to the deal"),
		std("person_id", "Contact person", "people", "The person linked to the deal"),
		std("pipeline_id", "Pipeline", "int", "The pipeline of the deal"),
		std("stage_id", "Stage", "stage", "The stage of the deal"),
		status,
		std("add_time", "Deal created", "date", "The creation date and time of the deal"),
		std("update_time", "Update time", "date", "The last update date and time of the deal"),
		std("stage_change_time", "Last stage change", "date", "The date and time of the last stage change"),
		std("won_time", "Won time", "date", "The date and time the deal was won"),
		std("lost_time", "Lost time", "date", "The date and time the deal was lost"),
		std("close_time", "Deal closed on", "date", "The date and time the deal was closed"),
		std("expected_close_date", "Expected close date", "date", "The expected close date of the deal"),
		std("lost_reason", "Lost reason", "varchar_options", "The reason for losing the deal"),
		visible,
		std("origin", "Source origin", "varchar", "How the deal was created"),
		std("is_archived", "Archived", "boolean", "Whether the deal is archived"),
		std("archive_time", "Archive time", "date", "The date and time the deal was archived"),
		opt("next_activity_id", "Next activity", "activity", "The next undone activity of the deal"),
		opt("last_activity_id", "Last activity", "activity", "The last done activity of the deal"),
		opt("first_won_time", "First won time", "date", "When the deal was first won"),
		opt("products_count", "Number of products", "int", "The number of products on the deal"),
		opt("files_count", "Number of files", "int", "The number of files attached to the deal"),
		opt("notes_count", "Number of notes", "int", "The number of notes on the deal"),
		opt("followers_count", "Number of followers", "int", "The number of users following the deal"),
		opt("email_messages_count", "Number of email messages", "int", "The number of email messages linked to the deal"),
		opt("activities_count", "Total activities", "int", "The number of activities of the deal"),
		opt("done_activities_count", "Done activities", "int", "The number of done activities of the deal"),
		opt("undone_activities_count", "Activities to do", "int", "The number of undone activities of the deal"),
		opt("participants_count", "Number of participants", "int", "The number of persons participating in the deal"),
		opt("last_incoming_mail_time", "Last email received", "date", "When the last email about the deal was received"),
		opt("last_outgoing_mail_time", "Last email sent", "date", "When the last email about the deal was sent"),
		opt("smart_bcc_email", "Smart BCC email", "varchar", "The Smart BCC address of the deal"),
		opt("source_lead_id", "Source lead", "lead", "The lead the deal was converted from"),

		{Code: cfReferralID, Name: "Partner Center referral ID", Type: "varchar", Custom: true,
			Description: "Id of the matching referral in Microsoft Partner Center", ImportantStages: []int{7, 8, 9, 10, 11}},
		{Code: cfCoSellMotion, Name: "Co-sell motion", Type: "enum", Custom: true,
			Description: "Who leads the co-sell engagement",
			Options:     []fieldOption{{optPartnerLed, "Partner-led"}, {optMicrosoftLed, "Microsoft-led"}, {optJoint, "Joint"}}},
		{Code: cfAzureACR, Name: "Azure consumption (ACR)", Type: "monetary", Custom: true,
			Description: "Expected monthly Azure consumed revenue", Subfields: monetarySubfields("Azure consumption (ACR)")},
		{Code: cfMicrosoftSell, Name: "Microsoft seller", Type: "varchar", Custom: true,
			Description: "The Microsoft account executive or specialist on the deal"},
		{Code: cfSolutionAreas, Name: "Solution areas", Type: "set", Custom: true,
			Description: "Microsoft solution areas the deal covers", Options: solutionAreaOptions},
		{Code: cfSubmissionDate, Name: "Partner Center submission date", Type: "date", Custom: true,
			Description: "When the deal was shared with Microsoft in Partner Center"},
		{Code: cfLicensedSeats, Name: "Licensed seats", Type: "double", Custom: true,
			Description: "Number of user licenses in scope"},
	}
	for i, f := range fields {
		f.ordinal = i + 1
	}
	return fields
}

// customField returns the custom deal field with the code.
func (s *Server) customField(code string) *dealField {
	f := s.fieldsByCode[code]
	if f == nil || !f.Custom {
		return nil
	}
	return f
}

// money is a monetary custom field value.
type money struct {
	Value    float64 `json:"value"`
	Currency string  `json:"currency"`
}

// optionRef is an option value read with include_option_labels=true.
type optionRef struct {
	ID    int    `json:"id"`
	Label string `json:"label"`
}

// GET /api/v2/dealFields

type visibilityJSON struct {
	AddVisible            bool          `json:"add_visible_flag"`
	DetailsVisible        bool          `json:"details_visible_flag"`
	ProjectsDetailVisible bool          `json:"projects_detail_visible_flag"`
	ShowInPipelines       pipelinesJSON `json:"show_in_pipelines"`
}

type pipelinesJSON struct {
	ShowInAll   bool  `json:"show_in_all"`
	PipelineIDs []int `json:"pipeline_ids"`
}

type importantJSON struct {
	Enabled  bool  `json:"enabled"`
	StageIDs []int `json:"stage_ids"`
}

type requiredJSON struct {
	Enabled  bool                `json:"enabled"`
	StageIDs []int               `json:"stage_ids"`
	Statuses map[string][]string `json:"statuses"`
}

type dealFieldJSON struct {
	FieldName               string          `json:"field_name"`
	FieldCode               string          `json:"field_code"`
	Description             string          `json:"description,omitempty"`
	FieldType               string          `json:"field_type"`
	Options                 []fieldOption   `json:"options"`
	Subfields               []subfield      `json:"subfields"`
	IsCustomField           bool            `json:"is_custom_field"`
	IsOptionalResponseField bool            `json:"is_optional_response_field"`
	UIVisibility            *visibilityJSON `json:"ui_visibility,omitempty"`
	ImportantFields         *importantJSON  `json:"important_fields,omitempty"`
	RequiredFields          *requiredJSON   `json:"required_fields,omitempty"`
}

var dealFieldIncludes = []string{"ui_visibility", "important_fields", "required_fields"}

func (f *dealField) json(include []string) dealFieldJSON {
	out := dealFieldJSON{
		FieldName: f.Name, FieldCode: f.Code, Description: f.Description, FieldType: f.Type,
		Options: f.Options, Subfields: f.Subfields, IsCustomField: f.Custom, IsOptionalResponseField: f.Optional,
	}
	for _, inc := range include {
		switch inc {
		case "ui_visibility":
			// Read-only system fields are not offered in the add-deal form.
			system := !f.Custom && (f.Optional || f.Type == "date" && f.Code != "expected_close_date" ||
				f.Code == "id" || f.Code == "creator_user_id" || f.Code == "origin")
			out.UIVisibility = &visibilityJSON{AddVisible: !system, DetailsVisible: true,
				ShowInPipelines: pipelinesJSON{ShowInAll: true, PipelineIDs: []int{}}}
		case "important_fields":
			stages := append([]int{}, f.ImportantStages...)
			out.ImportantFields = &importantJSON{Enabled: len(stages) > 0, StageIDs: stages}
		case "required_fields":
			out.RequiredFields = &requiredJSON{StageIDs: []int{}, Statuses: map[string][]string{}}
		}
	}
	return out
}

func (s *Server) listDealFields(r *http.Request) (any, *apiError) {
	q := query{r.URL.Query()}
	limit, err := q.limit()
	if err != nil {
		return nil, err
	}
	include, err := q.listParam("include_fields", dealFieldIncludes...)
	if err != nil {
		return nil, err
	}
	spec := listSpec{sortBy: "id", limit: limit}
	if raw := q.v.Get("cursor"); raw != "" {
		c, cerr := decodeCursor(raw)
		if cerr != nil || c.Field != "id" || c.SortDirection != "asc" {
			return nil, badRequest("The parameter 'cursor' is invalid")
		}
		spec.cursor = c
	}
	items := make([]sortable, 0, len(s.dealFields))
	for _, f := range s.dealFields {
		items = append(items, sortable{id: f.ordinal, key: idKey(f.ordinal), value: f.ordinal, item: f.json(include)})
	}
	return listPage(items, spec)
}

// Reading custom fields

// customFieldKeys parses the custom_fields query parameter of deal reads: at
// most 15 comma-separated custom field codes. nil means every custom field.
// An unknown key is rejected rather than silently dropped (the spec does not
// say which; an error is what a caller can act on).
func (s *Server) customFieldKeys(q query) ([]string, *apiError) {
	raw := q.v.Get("custom_fields")
	if strings.TrimSpace(raw) == "" {
		return nil, nil
	}
	var keys []string
	for _, k := range strings.Split(raw, ",") {
		if k = strings.TrimSpace(k); k != "" && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	if len(keys) > maxCustomFieldKeys {
		return nil, badRequest("The parameter 'custom_fields' must contain at most %d keys", maxCustomFieldKeys)
	}
	for _, k := range keys {
		if s.customField(k) == nil {
			return nil, badRequest("The parameter 'custom_fields' contains '%s', which is not a custom deal field key", k)
		}
	}
	return keys, nil
}

// customFieldsOut renders a deal's custom_fields: every custom field (or just
// keys), null when unset; option ids become {id, label} when labels is set.
func (s *Server) customFieldsOut(d *deal, keys []string, labels bool) map[string]any {
	if keys == nil {
		for _, f := range s.dealFields {
			if f.Custom {
				keys = append(keys, f.Code)
			}
		}
	}
	out := make(map[string]any, len(keys))
	for _, k := range keys {
		v, set := d.CustomFields[k]
		f := s.customField(k)
		switch {
		case !set || f == nil:
			out[k] = nil
		case labels && f.Type == "enum":
			id := v.(int)
			label, _ := f.optionLabel(id)
			out[k] = optionRef{id, label}
		case labels && f.Type == "set":
			ids := v.([]int)
			refs := make([]optionRef, 0, len(ids))
			for _, id := range ids {
				label, _ := f.optionLabel(id)
				refs = append(refs, optionRef{id, label})
			}
			out[k] = refs
		default:
			out[k] = v
		}
	}
	return out
}

// searchableCustomValues returns the deal's custom field values that the deal
// search looks in (text and numeric types), in field order.
func (s *Server) searchableCustomValues(d *deal) []string {
	var out []string
	for _, f := range s.dealFields {
		v, set := d.CustomFields[f.Code]
		if !f.Custom || !set {
			continue
		}
		switch x := v.(type) {
		case string:
			if f.Type == "varchar" || f.Type == "text" {
				out = append(out, x)
			}
		case float64:
			out = append(out, strconv.FormatFloat(x, 'f', -1, 64))
		case money:
			out = append(out, strconv.FormatFloat(x.Value, 'f', -1, 64))
		}
	}
	return out
}

// Writing custom fields

// applyCustomFields validates the body's custom_fields object and merges it
// into d's values (copy on write: d may share its map with the stored deal).
// A null value clears the field; every other value must fit the field type.
func (s *Server) applyCustomFields(d *deal, b body) *apiError {
	present, null := b.present("custom_fields")
	if !present || null {
		return nil
	}
	var in map[string]json.RawMessage
	if err := json.Unmarshal(b["custom_fields"], &in); err != nil || in == nil {
		return b.typeErr("custom_fields", "an object")
	}
	keys := make([]string, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	merged := make(map[string]any, len(d.CustomFields)+len(in))
	for k, v := range d.CustomFields {
		merged[k] = v
	}
	for _, k := range keys {
		f := s.customField(k)
		if f == nil {
			if std := s.fieldsByCode[k]; std != nil {
				return badRequest("'%s' is a standard deal field, not a custom field: set it at the top level of the body", k)
			}
			return badRequest("Custom field '%s' does not exist; custom fields are keyed by the field_code from GET /api/v2/dealFields", k)
		}
		raw := bytes.TrimSpace(in[k])
		if string(raw) == "null" {
			delete(merged, k)
			continue
		}
		v, err := f.parseValue(raw, d.Currency)
		if err != nil {
			return err
		}
		if v == nil {
			delete(merged, k)
		} else {
			merged[k] = v
		}
	}
	d.CustomFields = merged
	return nil
}

// parseValue checks a non-null JSON value against the field type and returns
// it in stored form; nil means the value clears the field.
func (f *dealField) parseValue(raw json.RawMessage, currency string) (any, *apiError) {
	bad := func(want string) *apiError {
		return badRequest("Custom field '%s' (%s) must be %s", f.Name, f.Code, want)
	}
	switch f.Type {
	case "varchar", "text":
		limit, want := 255, "a string of at most 255 characters"
		if f.Type == "text" {
			limit, want = 65535, "a string of at most 65535 characters"
		}
		var str string
		if json.Unmarshal(raw, &str) != nil || utf8.RuneCountInString(str) > limit {
			return nil, bad(want)
		}
		if strings.TrimSpace(str) == "" {
			return nil, nil
		}
		return str, nil
	case "double":
		n, ok := jsonNumber(raw)
		if !ok {
			return nil, bad("a number")
		}
		return n, nil
	case "monetary":
		want := `an object {"value": number, "currency": "3-letter code"}`
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil || m == nil {
			return nil, bad(want)
		}
		for k := range m {
			if k != "value" && k != "currency" {
				return nil, bad(want + fmt.Sprintf(", not with '%s'", k))
			}
		}
		n, ok := jsonNumber(m["value"])
		if !ok {
			return nil, bad(want + " with a numeric value")
		}
		out := money{Value: n, Currency: currency}
		if c, given := m["currency"]; given && string(bytes.TrimSpace(c)) != "null" {
			if json.Unmarshal(c, &out.Currency) != nil || !currencyRe.MatchString(out.Currency) {
				return nil, bad(want + " with a 3-letter ISO 4217 currency code")
			}
		}
		return out, nil
	case "date":
		var str string
		if json.Unmarshal(raw, &str) != nil {
			return nil, bad("a date in the format YYYY-MM-DD")
		}
		if _, err := time.Parse(dateLayout, str); err != nil {
			return nil, bad("a date in the format YYYY-MM-DD")
		}
		return str, nil
	case "enum":
		id, ok := jsonInt(raw)
		if !ok {
			return nil, bad("the integer id of one of its options: " + f.optionList())
		}
		if _, exists := f.optionLabel(id); !exists {
			return nil, badRequest("Custom field '%s' (%s) has no option with id %d; options: %s", f.Name, f.Code, id, f.optionList())
		}
		return id, nil
	case "set":
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) != nil {
			return nil, bad("an array of integer option ids of: " + f.optionList())
		}
		if len(items) == 0 {
			return nil, badRequest("Custom field '%s' (%s) must not be an empty array; send null to clear it", f.Name, f.Code)
		}
		var ids []int
		for _, it := range items {
			id, ok := jsonInt(it)
			if !ok {
				return nil, bad("an array of integer option ids of: " + f.optionList())
			}
			if _, exists := f.optionLabel(id); !exists {
				return nil, badRequest("Custom field '%s' (%s) has no option with id %d; options: %s", f.Name, f.Code, id, f.optionList())
			}
			if !slices.Contains(ids, id) {
				ids = append(ids, id)
			}
		}
		return ids, nil
	}
	return nil, badRequest("Custom field '%s' (%s) of type %s cannot be set through the API", f.Name, f.Code, f.Type)
}

// jsonNumber decodes a JSON number (a numeric string is not one).
func jsonNumber(raw json.RawMessage) (float64, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return 0, false
	}
	var n float64
	if json.Unmarshal(raw, &n) != nil || math.IsInf(n, 0) {
		return 0, false
	}
	return n, true
}

// jsonInt decodes a JSON number that is a whole number.
func jsonInt(raw json.RawMessage) (int, bool) {
	n, ok := jsonNumber(raw)
	if !ok || n != math.Trunc(n) || math.Abs(n) > 1<<31 {
		return 0, false
	}
	return int(n), true
}

// Seed values

var microsoftSellers = []string{
	"Jordan Blake", "Aiko Tanaka", "Rafael Mendes", "Grace O'Neill", "Samir Haddad",
	"Elena Petrova", "Kwame Mensah", "Lucy Harrington",
}

// seedCustomFields gives seeded deals custom field values. It runs after all
// other seeding so the values it draws leave every other seeded field as it
// was. Co-sell pipeline deals carry the co-sell fields; a few sales pipeline
// deals carry some of them too.
func (s *Server) seedCustomFields(rng *rand.Rand) {
	for id := 1; id < s.nextDealID; id++ {
		d := s.deals[id]
		cf := map[string]any{}
		coSell := d.PipelineID == 2
		if !coSell && rng.IntN(10) >= 2 {
			d.CustomFields = cf
			continue
		}
		if coSell || rng.IntN(2) == 0 {
			cf[cfReferralID] = fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x",
				rng.Uint32(), rng.IntN(1<<16), rng.IntN(1<<12), 0x8000|rng.IntN(1<<14), rng.Int64N(1<<48))
			submitted := minTime(d.AddTime.AddDate(0, 0, rng.IntN(10)), d.UpdateTime)
			cf[cfSubmissionDate] = submitted.Format(dateLayout)
		}
		cf[cfCoSellMotion] = []int{optPartnerLed, optPartnerLed, optMicrosoftLed, optJoint}[rng.IntN(4)]
		if rng.IntN(10) < 8 {
			cf[cfMicrosoftSell] = microsoftSellers[rng.IntN(len(microsoftSellers))]
		}
		areas := []int{solutionAreaOptions[rng.IntN(len(solutionAreaOptions))].ID.(int)}
		if rng.IntN(3) == 0 {
			if extra := solutionAreaOptions[rng.IntN(len(solutionAreaOptions))].ID.(int); extra != areas[0] {
				areas = append(areas, extra)
			}
		}
		sort.Ints(areas)
		cf[cfSolutionAreas] = areas
		if slices.ContainsFunc(areas, func(a int) bool { return a <= 33 }) && rng.IntN(10) < 7 {
			cf[cfAzureACR] = money{Value: float64(1+rng.IntN(60)) * 500, Currency: d.Currency}
		}
		if slices.Contains(areas, 34) || slices.Contains(areas, 36) {
			cf[cfLicensedSeats] = float64(25 * (1 + rng.IntN(80)))
		}
		d.CustomFields = cf
	}
}
