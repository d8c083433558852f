package sandbox

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestGetReferral(t *testing.T) {
	e := newEnv(t, Options{})
	first := e.find("status eq 'Active'")
	id := first["id"].(string)

	r := e.get(referralsPath + "/" + id)
	body := r.ok(t, http.StatusOK)
	require.Equal(t, e.ts.URL+"/v1.0/engagements/$metadata#referrals/$entity", body["@odata.context"])
	delete(body, "@odata.context")
	require.Equal(t, first, body, "the same representation as in the list")
	require.Equal(t, body["eTag"], r.header.Get("ETag"), "ETag header carries the eTag verbatim")
	require.True(t, strings.HasPrefix(r.header.Get("ETag"), `"`) && strings.HasSuffix(r.header.Get("ETag"), `"`))
	require.Equal(t, e.ts.URL+"/v1.0/engagements/referrals/"+id, dig(body, "links/self/uri"))

	for _, p := range []string{"/" + id + "/", "/" + id + "//", "/" + strings.ToUpper(id)} {
		require.Equal(t, id, e.get(referralsPath+p).ok(t, http.StatusOK)["id"], p)
	}

	desc := e.get(referralsPath+"/00000000-0000-0000-0000-000000000000").failed(t, http.StatusNotFound)
	require.Contains(t, desc, "00000000-0000-0000-0000-000000000000")
	e.get(referralsPath+"/not-a-guid").failed(t, http.StatusNotFound)
	e.get("/v1.0/engagements/referrals/"+id+"/extra").failed(t, http.StatusNotFound)
	e.get("/v1.0/engagements/leads").failed(t, http.StatusNotFound)
	e.get("/v2.0/engagements/referrals").failed(t, http.StatusNotFound)
}

func TestHeaders(t *testing.T) {
	e := newEnv(t, Options{})
	r := e.list("$top", "1")
	require.NotEmpty(t, r.header.Get("MS-CV"))
	require.Regexp(t, guidRE, r.header.Get("Request-ID"))
	require.Empty(t, r.header.Get("MS-RequestId"), "only echoed when sent")

	r = e.get(referralsPath+"?$top=1", "MS-RequestId", "4a5b6c7d-0000-4000-8000-000000000001", "MS-CorrelationId", "corr-42")
	require.Equal(t, "4a5b6c7d-0000-4000-8000-000000000001", r.header.Get("MS-RequestId"))
	require.Equal(t, "corr-42", r.header.Get("MS-CorrelationId"))

	r = e.get("/nowhere", "MS-CorrelationId", "corr-43", "Authorization", "")
	r.failed(t, http.StatusNotFound)
	require.Equal(t, "corr-43", r.header.Get("MS-CorrelationId"), "echoed on errors too")

	r = e.call(http.MethodDelete, referralsPath+"/x", nil)
	r.failed(t, http.StatusMethodNotAllowed)
	require.Equal(t, "GET, PATCH, PUT", r.header.Get("Allow"))
	r = e.call(http.MethodPut, referralsPath, "{}")
	r.failed(t, http.StatusMethodNotAllowed)
	require.Equal(t, "GET, POST", r.header.Get("Allow"))

	id := e.find("status eq 'New'")["id"].(string)
	e.call(http.MethodPatch, referralsPath+"/"+id, `[]`, "Content-Type", "text/plain").failed(t, http.StatusUnsupportedMediaType)
	e.call(http.MethodPatch, referralsPath+"/"+id, `[{"op":"replace","path":"/details/notes","value":"x"}]`,
		"Content-Type", "application/json-patch+json").ok(t, http.StatusNoContent)
	big := `{"name":"` + strings.Repeat("x", maxBody) + `"}`
	e.call(http.MethodPost, referralsPath, big).failed(t, http.StatusRequestEntityTooLarge)
}

func TestCreateReferral(t *testing.T) {
	e := newEnv(t, Options{})
	body := newReferral("Contoso Ltd")
	body["id"] = "ignored"
	body["direction"] = "Incoming"
	body["organizationName"] = "Someone Else"
	body["registrations"] = []any{map[string]any{"id": "x"}}
	body["qualification"] = "salesqualified"
	body["details"].(map[string]any)["closingDateTime"] = "2026-12-31"
	body["details"].(map[string]any)["currency"] = "usd"
	body["team"] = []any{map[string]any{"firstName": "Alex", "email": "alex@treyresearch.net"}}

	r := e.call(http.MethodPost, referralsPath, body)
	got := r.ok(t, http.StatusCreated)
	id := got["id"].(string)
	require.Regexp(t, guidRE, id)
	require.NotEqual(t, "ignored", id)
	require.Regexp(t, guidRE, got["engagementId"])
	require.Equal(t, "Outgoing", got["direction"])
	require.Equal(t, "Trey Research", got["organizationName"])
	require.Equal(t, "Active", got["status"], "an outgoing referral is accepted on creation (create-a-referral example)")
	require.Equal(t, "Accepted", got["substatus"])
	require.Equal(t, "SalesQualified", got["qualification"], "enumerations are stored canonically")
	require.Equal(t, "USD", str(got, "details/currency"))
	require.Equal(t, "2026-12-31T00:00:00.0000000Z", str(got, "details/closingDateTime"))
	require.Equal(t, "2026-09-15T12:00:00.0000000Z", got["createdDateTime"])
	require.Equal(t, got["createdDateTime"], got["updatedDateTime"])
	require.NotContains(t, got, "registrations")
	require.Equal(t, got["createdDateTime"], got["acceptedDateTime"])
	require.NotEmpty(t, got["eTag"])
	require.Equal(t, got["eTag"], r.header.Get("ETag"))
	require.Equal(t, e.ts.URL+"/v1.0/engagements/referrals/"+id, r.header.Get("Location"))
	require.Equal(t, e.ts.URL+"/v1.0/engagements/$metadata#referrals/$entity", got["@odata.context"])

	fetched := e.referral(id)
	require.Equal(t, got, fetched)
	require.Len(t, e.all(), 61)

	t.Run("given engagement and status", func(t *testing.T) {
		b := newReferral("Fabrikam Inc")
		b["engagementId"] = strings.ToUpper(str(fetched, "engagementId"))
		b["type"] = "shared"
		b["status"] = "active"
		b["target"] = []any{map[string]any{"id": "msft", "type": "BusinessProfileLocation"}}
		c := e.create(b)
		require.Equal(t, fetched["engagementId"], c["engagementId"])
		require.Equal(t, "Shared", c["type"])
		require.Equal(t, "Active", c["status"])
		require.Equal(t, "Accepted", c["substatus"], "the only substatus of Active")
		require.Equal(t, c["createdDateTime"], c["acceptedDateTime"])
		require.Len(t, e.all("$filter", "engagementId eq '"+str(fetched, "engagementId")+"'"), 2)

		b["status"], b["substatus"] = "Closed", "Won"
		c = e.create(b)
		require.NotEmpty(t, c["closedDateTime"])
	})

	t.Run("validation", func(t *testing.T) {
		mutate := func(f func(map[string]any)) map[string]any {
			b := newReferral("Contoso Ltd")
			f(b)
			return b
		}
		cases := map[string]struct {
			body any
			msg  string
		}{
			"no type":          {mutate(func(b map[string]any) { delete(b, "type") }), "'type' is required"},
			"bad type":         {mutate(func(b map[string]any) { b["type"] = "Private" }), "'type'"},
			"no customer":      {mutate(func(b map[string]any) { delete(b, "customerProfile") }), "'customerProfile' is required"},
			"no customer name": {mutate(func(b map[string]any) { b["customerProfile"] = map[string]any{"size": "10to50employees"} }), "'customerProfile/name' is required"},
			"no consent":       {mutate(func(b map[string]any) { delete(b, "consent") }), "'consent' is required"},
			"no details":       {mutate(func(b map[string]any) { delete(b, "details") }), "'details' is required"},
			"wrong type":       {mutate(func(b map[string]any) { b["details"].(map[string]any)["dealValue"] = "lots" }), "'details/dealValue' must be a number"},
			"negative value":   {mutate(func(b map[string]any) { b["details"].(map[string]any)["dealValue"] = -5 }), "must not be negative"},
			"bad currency":     {mutate(func(b map[string]any) { b["details"].(map[string]any)["currency"] = "dollars" }), "currency"},
			"bad closing date": {mutate(func(b map[string]any) { b["details"].(map[string]any)["closingDateTime"] = "soon" }), "date-time"},
			"bad stage":        {mutate(func(b map[string]any) { b["salesStage"] = "Negotiate" }), "salesStage"},
			"bad status":       {mutate(func(b map[string]any) { b["status"] = "Open" }), "'status'"},
			"closed no sub":    {mutate(func(b map[string]any) { b["status"] = "Closed" }), "substatus"},
			"incompatible":     {mutate(func(b map[string]any) { b["status"], b["substatus"] = "New", "Won" }), "not valid for status 'New'"},
			"sub no status":    {mutate(func(b map[string]any) { b["substatus"] = "Received" }), "'status' is required"},
			"bad engagement":   {mutate(func(b map[string]any) { b["engagementId"] = "E-1" }), "GUID"},
			"bad email":        {mutate(func(b map[string]any) { b["team"] = []any{map[string]any{"email": "nope"}} }), "e-mail"},
			"bad assist":       {mutate(func(b map[string]any) { b["inviteContext"] = map[string]any{"assistanceRequestCode": "Help"} }), "assistanceRequestCode"},
			"target":           {mutate(func(b map[string]any) { b["target"] = []any{map[string]any{"id": "x"}} }), "target"},
			"array body":       {"[]", "Referral object"},
			"empty body":       {"", "required"},
			"not json":         {"{oops", "not valid JSON"},
		}
		for name, c := range cases {
			t.Run(name, func(t *testing.T) {
				require.Contains(t, e.call(http.MethodPost, referralsPath, c.body).failed(t, http.StatusBadRequest), c.msg)
			})
		}
		require.Len(t, e.all(), 63, "nothing was created by the failures")
	})
}

func TestCreateIdempotency(t *testing.T) {
	e := newEnv(t, Options{})
	const key = "2b9f5a3e-8c1d-4e6f-9a0b-1c2d3e4f5a6b"
	body := newReferral("Woodgrove Bank")
	first := e.create(body, "MS-RequestId", key)
	e.clock.Advance(time.Minute)

	// The same body re-encoded with other whitespace and key order is the same request.
	again := e.call(http.MethodPost, referralsPath, `{
		"details": {"notes": "Created by a test", "currency": "USD", "dealValue": 120000},
		"consent": {"consentToContact": true},
		"customerProfile": {"address": {"country": "US"}, "name": "Woodgrove Bank"},
		"type": "Independent", "name": "Woodgrove Bank - Azure landing zone"}`, "MS-RequestId", key)
	got := again.ok(t, http.StatusCreated)
	require.Equal(t, first, got, "the retry returns the same referral")
	require.Equal(t, key, again.header.Get("MS-RequestId"))
	require.Len(t, e.all("$filter", "customerProfile/name eq 'Woodgrove Bank' and direction eq 'Outgoing' and createdDateTime ge 2026-09-15T00:00:00Z"), 1, "one referral, not two")

	other := newReferral("Woodgrove Bank")
	other["name"] = "A different deal"
	require.Contains(t, e.call(http.MethodPost, referralsPath, other, "MS-RequestId", key).failed(t, http.StatusConflict), key)

	// A different key creates a new referral; no key never deduplicates.
	require.NotEqual(t, first["id"], e.create(body, "MS-RequestId", "another-key")["id"])
	require.NotEqual(t, e.create(body)["id"], e.create(body)["id"])

	// A failed request is not recorded: fixing it under the same key works.
	bad := newReferral("Litware")
	delete(bad, "type")
	e.call(http.MethodPost, referralsPath, bad, "MS-RequestId", "retry-after-fix").failed(t, http.StatusBadRequest)
	e.create(newReferral("Litware"), "MS-RequestId", "retry-after-fix")
}

func TestPatchIdempotency(t *testing.T) {
	e := newEnv(t, Options{})
	ref := e.createIn("Active", "Accepted")
	id := ref["id"].(string)
	ops := []any{op("add", "/team/-", map[string]any{"firstName": "Kim", "email": "kim@treyresearch.net"})}
	e.patch(id, ops, "MS-RequestId", "patch-1", "If-Match", ref["eTag"].(string)).ok(t, http.StatusNoContent)
	// The retry carries the now stale If-Match; it is answered from the record, not re-applied.
	e.patch(id, ops, "MS-RequestId", "patch-1", "If-Match", ref["eTag"].(string)).ok(t, http.StatusNoContent)
	require.Len(t, e.referral(id)["team"], 1)
	e.call(http.MethodPatch, referralsPath+"/"+id+"/", ops, "MS-RequestId", "patch-1").ok(t, http.StatusNoContent)
	e.patch(id, []any{op("replace", "/details/notes", "x")}, "MS-RequestId", "patch-1").failed(t, http.StatusConflict)
	e.call(http.MethodPost, referralsPath, newReferral("Contoso Ltd"), "MS-RequestId", "patch-1").failed(t, http.StatusConflict)
}

func TestStateMachine(t *testing.T) {
	e := newEnv(t, Options{})
	combos := [][2]string{}
	for _, st := range statuses {
		for _, sub := range allSubstatuses {
			combos = append(combos, [2]string{st, sub})
		}
	}
	legalPair := func(st, sub string) bool { return contains(substatusOf[st], sub) }
	legal := func(from, to [2]string) bool {
		if !legalPair(to[0], to[1]) {
			return false
		}
		if from[0] == "Closed" {
			return from == to
		}
		return contains(nextStatuses[from[0]], to[0])
	}
	transitions := 0
	for _, from := range statusCombos {
		for _, to := range combos {
			name := fmt.Sprintf("%s-%s to %s-%s", from[0], from[1], to[0], to[1])
			t.Run(name, func(t *testing.T) {
				ref := e.createIn(from[0], from[1])
				id := ref["id"].(string)
				e.clock.Advance(time.Second)
				r := e.patch(id, []any{op("replace", "/status", to[0]), op("replace", "/substatus", to[1])})
				after := e.referral(id)
				if !legal([2]string{from[0], from[1]}, to) {
					r.failed(t, http.StatusBadRequest)
					require.Equal(t, ref["eTag"], after["eTag"], "a rejected patch changes nothing")
					require.Equal(t, from[0], after["status"])
					require.Equal(t, from[1], after["substatus"])
					return
				}
				transitions++
				r.ok(t, http.StatusNoContent)
				require.Equal(t, to[0], after["status"])
				require.Equal(t, to[1], after["substatus"])
				require.NotEqual(t, ref["eTag"], after["eTag"])
				require.Equal(t, r.header.Get("ETag"), after["eTag"])
				require.Equal(t, fmtTime(e.clock.Now()), after["updatedDateTime"])
				if to[0] == "Active" && from[0] != "Active" {
					require.Equal(t, fmtTime(e.clock.Now()), after["acceptedDateTime"])
				}
				if to[0] == "Closed" && from[0] != "Closed" {
					require.Equal(t, fmtTime(e.clock.Now()), after["closedDateTime"])
				} else if to[0] != "Closed" {
					require.NotContains(t, after, "closedDateTime")
				}
			})
		}
	}
	// New: 2 + 1 + 4 from each of 2 substatuses; Active: 1 + 4; Closed: itself, 4 times.
	require.Equal(t, 2*7+5+4, transitions)

	t.Run("status without a compatible substatus", func(t *testing.T) {
		ref := e.createIn("New", "Pending")
		id := ref["id"].(string)
		require.Contains(t, e.patch(id, []any{op("replace", "/status", "Active")}).failed(t, http.StatusBadRequest), "substatus 'Pending' is not valid for status 'Active'")
		require.Contains(t, e.patch(id, []any{op("replace", "/substatus", "Won")}).failed(t, http.StatusBadRequest), "not valid for status 'New'")
		e.patch(id, []any{op("replace", "/substatus", "received")}).ok(t, http.StatusNoContent)
		require.Equal(t, "Received", e.referral(id)["substatus"])
		e.patch(id, []any{op("replace", "/status", "Closed")}).failed(t, http.StatusBadRequest)
		e.patch(id, []any{op("replace", "/substatus", "Declined"), op("replace", "/status", "closed"), op("replace", "/statusReason", "Not a fit")}).ok(t, http.StatusNoContent)
		got := e.referral(id)
		require.Equal(t, "Closed", got["status"])
		require.Equal(t, "Declined", got["substatus"])
		require.Equal(t, "Not a fit", got["statusReason"])
		require.NotContains(t, got, "acceptedDateTime")
		e.patch(id, []any{op("replace", "/status", "New"), op("replace", "/substatus", "Pending")}).failed(t, http.StatusBadRequest)
		e.patch(id, []any{op("replace", "/details/notes", "Closed referrals still take notes")}).ok(t, http.StatusNoContent)
	})

	t.Run("seeded referrals follow the same rules", func(t *testing.T) {
		closed := e.find("status eq 'Closed' and substatus eq 'Won'")
		e.patch(closed["id"].(string), []any{op("replace", "/status", "Active"), op("replace", "/substatus", "Accepted")}).failed(t, http.StatusBadRequest)
		pending := e.find("status eq 'New' and direction eq 'Incoming' and type eq 'Shared'")
		e.patch(pending["id"].(string), []any{op("replace", "/status", "Active"), op("replace", "/substatus", "Accepted")}).ok(t, http.StatusNoContent)
		require.Equal(t, "Active", e.referral(pending["id"].(string))["status"])
	})
}

func TestPatchFields(t *testing.T) {
	e := newEnv(t, Options{})
	ref := e.createIn("Active", "Accepted")
	id := ref["id"].(string)
	ops := []any{
		op("replace", "/campaignId", "FY27-TEST"),
		op("replace", "/consent/consentToShareReferralWithMicrosoftSellers", true),
		op("replace", "/customerProfile/team", []any{map[string]any{"firstName": "Ana", "email": "ana@contoso.com"}}),
		op("add", "/customerProfile/team/-", map[string]any{"firstName": "Ben", "email": "ben@contoso.com"}),
		op("replace", "/details/closingDateTime", "2027-03-31T00:00:00Z"),
		op("replace", "/details/currency", "eur"),
		op("replace", "/details/dealValue", 99000.5),
		op("replace", "/details/notes", "Updated"),
		op("replace", "/details/requirements/solutions", []any{map[string]any{"id": "SOL-1"}}),
		op("add", "/details/requirements/solutions/-", map[string]any{"id": "SOL-2"}),
		op("replace", "/externalReferenceId", "CRM-7"),
		op("replace", "/referralProgram", "Azure IP Co-sell"),
		op("replace", "/salesStage", "develop"),
		op("replace", "/statusReason", "Going well"),
		op("replace", "/team", []any{map[string]any{"firstName": "Alex", "email": "alex@treyresearch.net"}}),
		op("add", "/team/-", map[string]any{"firstName": "Priya", "email": "priya@treyresearch.net"}),
	}
	e.clock.Advance(time.Hour)
	r := e.patch(id, ops, "Prefer", "return=representation")
	got := r.ok(t, http.StatusOK)
	require.Equal(t, "return=representation", r.header.Get("Preference-Applied"))
	require.Equal(t, got["eTag"], r.header.Get("ETag"))
	fetched := e.referral(id)
	require.Equal(t, fetched, got, "the representation is what a GET returns")
	require.Equal(t, "FY27-TEST", got["campaignId"])
	require.Equal(t, true, dig(got, "consent/consentToShareReferralWithMicrosoftSellers"))
	require.Equal(t, true, dig(got, "consent/consentToContact"), "other consent flags are kept")
	require.Len(t, dig(got, "customerProfile/team"), 2)
	require.Equal(t, "2027-03-31T00:00:00.0000000Z", str(got, "details/closingDateTime"))
	require.Equal(t, "EUR", str(got, "details/currency"))
	require.Equal(t, 99000.5, dig(got, "details/dealValue"))
	require.Equal(t, "Updated", str(got, "details/notes"))
	require.Len(t, dig(got, "details/requirements/solutions"), 2)
	require.Equal(t, "CRM-7", got["externalReferenceId"])
	require.Equal(t, "Develop", got["salesStage"])
	require.Equal(t, "Going well", got["statusReason"])
	require.Len(t, got["team"], 2)
	require.Equal(t, "Contoso Ltd", str(got, "customerProfile/name"), "untouched fields are kept")
	require.Equal(t, fmtTime(testNow.Add(time.Hour)), got["updatedDateTime"])
	require.Equal(t, ref["acceptedDateTime"], got["acceptedDateTime"], "still Active: accepted date unchanged")

	// Clearing with null.
	e.patch(id, []any{op("replace", "/externalReferenceId", nil), op("replace", "/details/dealValue", nil)}).ok(t, http.StatusNoContent)
	after := e.referral(id)
	require.NotContains(t, after, "externalReferenceId")
	require.Nil(t, dig(after, "details/dealValue"))

	// Filters see the change at once.
	require.Len(t, e.all("$filter", "externalReferenceId eq 'CRM-7'"), 0)
	require.Len(t, e.all("$filter", "campaignId eq 'FY27-TEST'"), 1)
}

func TestPatchRejects(t *testing.T) {
	e := newEnv(t, Options{})
	ref := e.createIn("New", "Pending")
	id := ref["id"].(string)
	cases := map[string]struct {
		body any
		msg  string
	}{
		"remove":          {[]any{op("remove", "/details/notes", nil)}, "'remove' is not supported"},
		"move":            {[]any{map[string]any{"op": "move", "from": "/a", "path": "/details/notes"}}, "not supported"},
		"test":            {[]any{op("test", "/status", "New")}, "not supported"},
		"missing op":      {[]any{map[string]any{"path": "/details/notes", "value": "x"}}, "'op' is required"},
		"missing path":    {[]any{map[string]any{"op": "replace", "value": "x"}}, "'path' is required"},
		"missing value":   {[]any{map[string]any{"op": "replace", "path": "/details/notes"}}, "'value' is required"},
		"path not listed": {[]any{op("replace", "/name", "x")}, "cannot be patched"},
		"readonly path":   {[]any{op("replace", "/id", "x")}, "cannot be patched"},
		"deep path":       {[]any{op("replace", "/customerProfile/name", "x")}, "cannot be patched"},
		"replace append":  {[]any{op("replace", "/team/-", map[string]any{"email": "a@b.com"})}, "only be used with 'add'"},
		"wrong type":      {[]any{op("replace", "/details/dealValue", "big")}, "must be a number"},
		"negative":        {[]any{op("replace", "/details/dealValue", -1)}, "must not be negative"},
		"bad bool":        {[]any{op("replace", "/consent/consentToShareReferralWithMicrosoftSellers", "yes")}, "boolean"},
		"bad date":        {[]any{op("replace", "/details/closingDateTime", "tomorrow")}, "date-time"},
		"bad currency":    {[]any{op("replace", "/details/currency", "EURO")}, "currency"},
		"bad stage":       {[]any{op("replace", "/salesStage", "Won")}, "not one of"},
		"bad status":      {[]any{op("replace", "/status", "Open")}, "not one of"},
		"null status":     {[]any{op("replace", "/status", nil)}, "must not be null"},
		"bad member":      {[]any{op("add", "/team/-", []any{})}, "team member object"},
		"bad email":       {[]any{op("replace", "/team", []any{map[string]any{"email": "x"}})}, "e-mail"},
		"not an array":    {map[string]any{"op": "replace"}, "JSON Patch array"},
		"empty":           {[]any{}, "at least one operation"},
		"no registration": {[]any{op("replace", "/registrations/0/contract/value", 1)}, "no deal registration"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			require.Contains(t, e.patch(id, c.body).failed(t, http.StatusBadRequest), c.msg)
		})
	}
	require.Equal(t, ref["eTag"], e.referral(id)["eTag"])
	e.patch("00000000-0000-0000-0000-000000000000", []any{op("replace", "/details/notes", "x")}).failed(t, http.StatusNotFound)
}

func TestPatchIsAtomic(t *testing.T) {
	e := newEnv(t, Options{})
	ref := e.createIn("New", "Pending")
	id := ref["id"].(string)
	before := e.referral(id)
	r := e.patch(id, []any{
		op("replace", "/details/notes", "changed"),
		op("add", "/team/-", map[string]any{"email": "a@treyresearch.net"}),
		op("replace", "/status", "Active"),
		op("replace", "/substatus", "Accepted"),
		op("replace", "/details/dealValue", "not a number"),
	})
	r.failed(t, http.StatusBadRequest)
	require.Equal(t, before, e.referral(id))

	// A state machine failure after valid field changes also leaves everything as it was.
	e.patch(id, []any{op("replace", "/details/notes", "changed"), op("replace", "/status", "Active")}).failed(t, http.StatusBadRequest)
	require.Equal(t, before, e.referral(id))
}

func TestETagConcurrency(t *testing.T) {
	e := newEnv(t, Options{})
	ref := e.createIn("New", "Pending")
	id := ref["id"].(string)
	etag := ref["eTag"].(string)
	notes := func(v string) []any { return []any{op("replace", "/details/notes", v)} }

	e.patch(id, notes("stale"), "If-Match", `"00000000-0000-0800-0000-000000000000"`).failed(t, http.StatusPreconditionFailed)
	r := e.patch(id, notes("one"), "If-Match", etag)
	r.ok(t, http.StatusNoContent)
	etag2 := r.header.Get("ETag")
	require.NotEqual(t, etag, etag2)
	require.Equal(t, etag2, e.referral(id)["eTag"])

	e.patch(id, notes("two"), "If-Match", etag).failed(t, http.StatusPreconditionFailed)
	e.patch(id, notes("two"), "If-Match", strings.Trim(etag2, `"`)).ok(t, http.StatusNoContent)
	e.patch(id, notes("three"), "If-Match", "*").ok(t, http.StatusNoContent)
	etag4 := e.referral(id)["eTag"].(string)
	e.patch(id, notes("four"), "If-Match", "W/"+etag4).ok(t, http.StatusNoContent)
	e.patch(id, notes("five")).ok(t, http.StatusNoContent)
	require.Equal(t, "five", str(e.referral(id), "details/notes"))

	// The trailing-slash variants are the same operation.
	etag = e.referral(id)["eTag"].(string)
	e.call(http.MethodPatch, referralsPath+"/"+id+"/", notes("six"), "If-Match", etag).ok(t, http.StatusNoContent)
	e.call(http.MethodPatch, referralsPath+"/"+id+"//", notes("seven"), "If-Match", etag).failed(t, http.StatusPreconditionFailed)
	e.call(http.MethodPatch, referralsPath+"/"+id+"//", notes("seven"), "Prefer", "return=representation").ok(t, http.StatusOK)
	e.patch(id, notes("seven"), "Prefer", "respond-async, return=representation; charset=utf-8").ok(t, http.StatusOK)

	r = e.patch(id, notes("eight"), "Prefer", "return=minimal")
	r.ok(t, http.StatusNoContent)
	require.Empty(t, r.raw)
}

func TestPut(t *testing.T) {
	e := newEnv(t, Options{})
	ref := e.createIn("New", "Pending")
	id := ref["id"].(string)
	body := e.referral(id)

	require.Contains(t, e.call(http.MethodPut, referralsPath+"/"+id, body).failed(t, http.StatusPreconditionRequired), "If-Match")
	e.call(http.MethodPut, referralsPath+"/"+id, body, "If-Match", `"nope"`).failed(t, http.StatusPreconditionFailed)

	body["status"], body["substatus"] = "Active", "Accepted"
	body["name"] = "Renamed"
	delete(body, "externalReferenceId")
	body["details"].(map[string]any)["notes"] = "via PUT"
	body["direction"] = "Incoming"         // read-only: ignored
	body["createdDateTime"] = "2001-01-01" // read-only: ignored
	e.clock.Advance(time.Minute)
	r := e.call(http.MethodPut, referralsPath+"/"+id+"/", body, "If-Match", ref["eTag"].(string))
	got := r.ok(t, http.StatusOK)
	require.Equal(t, "Renamed", got["name"])
	require.Equal(t, "Active", got["status"])
	require.Equal(t, fmtTime(testNow.Add(time.Minute)), got["acceptedDateTime"])
	require.Equal(t, "via PUT", str(got, "details/notes"))
	require.Equal(t, "Outgoing", got["direction"])
	require.Equal(t, ref["createdDateTime"], got["createdDateTime"])
	require.Equal(t, got["eTag"], r.header.Get("ETag"))
	require.NotEqual(t, ref["eTag"], got["eTag"])

	// Same state machine: Active cannot go back to New.
	body = e.referral(id)
	body["status"], body["substatus"] = "New", "Pending"
	e.call(http.MethodPut, referralsPath+"/"+id, body, "If-Match", body["eTag"].(string)).failed(t, http.StatusBadRequest)
	body["status"], body["substatus"] = "Active", ""
	e.call(http.MethodPut, referralsPath+"/"+id, body, "If-Match", body["eTag"].(string)).failed(t, http.StatusBadRequest)
	body["substatus"] = "Accepted"
	delete(body, "consent")
	require.Contains(t, e.call(http.MethodPut, referralsPath+"/"+id, body, "If-Match", "*").failed(t, http.StatusBadRequest), "consent")
	body = e.referral(id)
	body["id"] = "11111111-1111-1111-1111-111111111111"
	e.call(http.MethodPut, referralsPath+"/"+id, body, "If-Match", "*").failed(t, http.StatusBadRequest)
	e.call(http.MethodPut, referralsPath+"/11111111-1111-1111-1111-111111111111", body, "If-Match", "*").failed(t, http.StatusNotFound)
}

func registrationValue() map[string]any {
	return map[string]any{
		"type": "AzureIPCoSell",
		"solutionDetails": []any{map[string]any{
			"id": "SOL-7B2E41C9", "currency": "USD", "value": 50000, "isDeployedOnAzure": true,
			"primaryDeploymentOn": "Customer", "pricingModel": "PayAsYouGo",
			"marketplaceTransactionDetails": map[string]any{"isMarketplaceTransacted": true, "marketplaceTransactionDateTime": "2026-09-01T00:00:00Z"},
		}},
		"contract": map[string]any{
			"currency": "USD", "value": 150000, "term": "Finite",
			"startDateTime": "2026-10-01T00:00:00Z", "endDateTime": "2029-09-30T00:00:00Z", "signDateTime": "2026-09-20T00:00:00Z",
		},
	}
}

func TestDealRegistration(t *testing.T) {
	e := newEnv(t, Options{})
	add := func(id string, v any, headers ...string) resp {
		return e.call(http.MethodPatch, referralsPath+"/"+id+"/", []any{op("add", "/registrations/-", v)}, headers...)
	}

	t.Run("only on accepted or won referrals", func(t *testing.T) {
		for _, c := range [][2]string{{"New", "Pending"}, {"New", "Received"}, {"Closed", "Lost"}, {"Closed", "Declined"}, {"Closed", "Expired"}} {
			ref := e.createIn(c[0], c[1])
			require.Contains(t, add(ref["id"].(string), registrationValue()).failed(t, http.StatusBadRequest), "Active/Accepted")
		}
		// A won deal is registered after it closes (see "Documented behaviour" in the package doc).
		won := e.createIn("Closed", "Won")
		add(won["id"].(string), registrationValue()).ok(t, http.StatusNoContent)
		require.Len(t, e.referral(won["id"].(string))["registrations"], 1)
		// Closing as won and registering in one patch is fine too.
		active := e.createIn("Active", "Accepted")
		e.patch(active["id"].(string), []any{op("replace", "/status", "Closed"), op("replace", "/substatus", "Won"), op("add", "/registrations/-", registrationValue())}).ok(t, http.StatusNoContent)
		require.Len(t, e.referral(active["id"].(string))["registrations"], 1)
		// Accepting and registering in one patch is fine.
		ref := e.createIn("New", "Pending")
		e.patch(ref["id"].(string), []any{op("replace", "/status", "Active"), op("replace", "/substatus", "Accepted"), op("add", "/registrations/-", registrationValue())}).ok(t, http.StatusNoContent)
		require.Len(t, e.referral(ref["id"].(string))["registrations"], 1)
	})

	ref := e.createIn("Active", "Accepted")
	id := ref["id"].(string)
	e.clock.Advance(time.Hour)
	add(id, registrationValue()).ok(t, http.StatusNoContent)
	got := e.referral(id)
	regs := got["registrations"].([]any)
	require.Len(t, regs, 1)
	reg := regs[0].(map[string]any)
	require.Regexp(t, guidRE, reg["id"])
	require.Equal(t, "ReviewPending", reg["status"])
	require.Equal(t, "ReviewPending", got["registrationStatus"])
	require.Equal(t, fmtTime(testNow.Add(time.Hour)), reg["registrationDateTime"])
	require.Equal(t, fmtTime(testNow.Add(time.Hour)), dig(reg, "statusHistory/reviewPendingDateTime"))
	require.Equal(t, "2029-09-30T00:00:00.0000000Z", dig(reg, "contract/endDateTime"))
	require.NotContains(t, reg, "type")

	require.Contains(t, add(id, registrationValue()).failed(t, http.StatusConflict), "already has a deal registration")

	t.Run("update paths", func(t *testing.T) {
		base := "/registrations/0/"
		ops := []any{
			op("replace", base+"contract/startDateTime", "2026-11-01T00:00:00Z"),
			op("replace", base+"contract/endDateTime", "2027-10-31T00:00:00Z"),
			op("replace", base+"contract/signDateTime", "2026-10-15T00:00:00Z"),
			op("replace", base+"contract/term", "perpetual"),
			op("replace", base+"contract/value", 175000),
			op("replace", base+"solutionDetails/0/value", 60000),
			op("replace", base+"solutionDetails/0/currency", "usd"),
			op("replace", base+"solutionDetails/0/isDeployedOnAzure", false),
			op("replace", base+"solutionDetails/0/primaryDeploymentOn", "Partner"),
			op("replace", base+"solutionDetails/0/pricingModel", "Other"),
			op("replace", base+"solutionDetails/0/marketplaceTransactionDetails/isMarketplaceTransacted", false),
			op("add", base+"solutionDetails/0/marketplaceTransactionDetails/marketplaceTransactionDateTime", "2026-10-02"),
		}
		got := e.call(http.MethodPatch, referralsPath+"/"+id+"//", ops, "Prefer", "return=representation").ok(t, http.StatusOK)
		reg := got["registrations"].([]any)[0].(map[string]any)
		require.Equal(t, "Perpetual", dig(reg, "contract/term"))
		require.Equal(t, float64(175000), dig(reg, "contract/value"))
		require.Equal(t, "2026-11-01T00:00:00.0000000Z", dig(reg, "contract/startDateTime"))
		sd := reg["solutionDetails"].([]any)[0].(map[string]any)
		require.Equal(t, float64(60000), sd["value"])
		require.Equal(t, "USD", sd["currency"])
		require.Equal(t, false, sd["isDeployedOnAzure"])
		require.Equal(t, "Partner", sd["primaryDeploymentOn"])
		require.Equal(t, "Other", sd["pricingModel"])
		require.Equal(t, false, dig(sd, "marketplaceTransactionDetails/isMarketplaceTransacted"))
		require.Equal(t, "2026-10-02T00:00:00.0000000Z", dig(sd, "marketplaceTransactionDetails/marketplaceTransactionDateTime"))

		for name, o := range map[string]any{
			"end before start": op("replace", base+"contract/endDateTime", "2026-01-01T00:00:00Z"),
			"bad term":         op("replace", base+"contract/term", "Forever"),
			"negative value":   op("replace", base+"contract/value", -1),
			"bad deployment":   op("replace", base+"solutionDetails/0/primaryDeploymentOn", "Cloud"),
			"bad pricing":      op("replace", base+"solutionDetails/0/pricingModel", "Free"),
			"bad currency":     op("replace", base+"solutionDetails/0/currency", "US"),
			"second solution":  op("replace", "/registrations/0/solutionDetails/1/value", 1),
			"second reg":       op("replace", "/registrations/1/contract/value", 1),
			"contract cur":     op("replace", base+"contract/currency", "EUR"),
		} {
			require.NotEmpty(t, e.patch(id, []any{o}).failed(t, http.StatusBadRequest), name)
		}
	})

	t.Run("validation of a new registration", func(t *testing.T) {
		target := e.createIn("Active", "Accepted")["id"].(string)
		mutate := func(f func(v map[string]any)) map[string]any {
			v := registrationValue()
			f(v)
			return v
		}
		sd := func(v map[string]any) map[string]any { return v["solutionDetails"].([]any)[0].(map[string]any) }
		ct := func(v map[string]any) map[string]any { return v["contract"].(map[string]any) }
		cases := map[string]struct {
			value any
			msg   string
		}{
			"no type":          {mutate(func(v map[string]any) { delete(v, "type") }), "'type' is required"},
			"wrong type":       {mutate(func(v map[string]any) { v["type"] = "Services" }), "AzureIPCoSell"},
			"no solutions":     {mutate(func(v map[string]any) { v["solutionDetails"] = []any{} }), "at least one solution"},
			"bad deployment":   {mutate(func(v map[string]any) { sd(v)["primaryDeploymentOn"] = "Cloud" }), "primaryDeploymentOn"},
			"bad pricing":      {mutate(func(v map[string]any) { sd(v)["pricingModel"] = "Subscription" }), "pricingModel"},
			"bad sol currency": {mutate(func(v map[string]any) { sd(v)["currency"] = "1234" }), "currency"},
			"negative sol":     {mutate(func(v map[string]any) { sd(v)["value"] = -10 }), "must not be negative"},
			"bad mkt date": {mutate(func(v map[string]any) {
				sd(v)["marketplaceTransactionDetails"].(map[string]any)["marketplaceTransactionDateTime"] = "x"
			}), "date-time"},
			"no contract":      {mutate(func(v map[string]any) { delete(v, "contract") }), "contract' is required"},
			"bad term":         {mutate(func(v map[string]any) { ct(v)["term"] = "Monthly" }), "term"},
			"no term":          {mutate(func(v map[string]any) { delete(ct(v), "term") }), "term' is required"},
			"no value":         {mutate(func(v map[string]any) { delete(ct(v), "value") }), "value' is required"},
			"negative":         {mutate(func(v map[string]any) { ct(v)["value"] = -1 }), "must not be negative"},
			"no currency":      {mutate(func(v map[string]any) { delete(ct(v), "currency") }), "currency' is required"},
			"bad currency":     {mutate(func(v map[string]any) { ct(v)["currency"] = "Dollar" }), "currency"},
			"bad start":        {mutate(func(v map[string]any) { ct(v)["startDateTime"] = "Q4" }), "date-time"},
			"no start":         {mutate(func(v map[string]any) { delete(ct(v), "startDateTime") }), "startDateTime' is required"},
			"finite no end":    {mutate(func(v map[string]any) { delete(ct(v), "endDateTime") }), "endDateTime' is required"},
			"end before start": {mutate(func(v map[string]any) { ct(v)["endDateTime"] = "2026-09-30T00:00:00Z" }), "must not be before"},
			"wrong json type":  {mutate(func(v map[string]any) { ct(v)["value"] = "150k" }), "must be a number"},
			"not an object":    {"AzureIPCoSell", "deal registration object"},
		}
		for name, c := range cases {
			t.Run(name, func(t *testing.T) {
				require.Contains(t, add(target, c.value).failed(t, http.StatusBadRequest), c.msg)
			})
		}
		// A perpetual contract needs no end; solutions the referral lists lend their names.
		e.patch(target, []any{op("replace", "/details/requirements/solutions",
			[]any{map[string]any{"id": "SOL-7B2E41C9", "name": "Trey Research Cloud Migration Factory"}})}).ok(t, http.StatusNoContent)
		perpetual := mutate(func(v map[string]any) { ct(v)["term"] = "Perpetual"; delete(ct(v), "endDateTime") })
		add(target, perpetual).ok(t, http.StatusNoContent)
		reg := e.referral(target)["registrations"].([]any)[0].(map[string]any)
		require.Equal(t, "Trey Research Cloud Migration Factory", reg["solutionDetails"].([]any)[0].(map[string]any)["name"])
		require.NotContains(t, reg["contract"], "endDateTime")
	})
}

func TestConcurrentWrites(t *testing.T) {
	e := newEnv(t, Options{})
	ref := e.createIn("Active", "Accepted")
	id := ref["id"].(string)
	client := e.ts.Client()
	send := func(method, path, body string, headers ...string) (int, error) {
		req, err := http.NewRequest(method, e.ts.URL+path, strings.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+DefaultToken)
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		res, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		defer res.Body.Close()
		_, err = io.Copy(io.Discard, res.Body)
		return res.StatusCode, err
	}
	type result struct {
		what   string
		status int
		err    error
	}
	results := make(chan result, 60)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := send(http.MethodPatch, referralsPath+"/"+id,
				fmt.Sprintf(`[{"op":"add","path":"/team/-","value":{"email":"p%d@treyresearch.net"}}]`, i))
			results <- result{"patch", st, err}
			body := fmt.Sprintf(`{"type":"Independent","customerProfile":{"name":"Customer %d"},"consent":{},"details":{}}`, i%5)
			st, err = send(http.MethodPost, referralsPath, body, "MS-RequestId", fmt.Sprintf("key-%d", i%5))
			results <- result{"create", st, err}
			st, err = send(http.MethodGet, referralsPath+"?$top=7&$filter="+url.QueryEscape("contains(customerProfile/name, 'Customer')"), "")
			results <- result{"list", st, err}
		}()
	}
	wg.Wait()
	close(results)
	want := map[string]int{"patch": http.StatusNoContent, "create": http.StatusCreated, "list": http.StatusOK}
	for r := range results {
		require.NoError(t, r.err)
		require.Equal(t, want[r.what], r.status, r.what)
	}
	require.Len(t, e.referral(id)["team"], 20)
	require.Len(t, e.all("$filter", "startswith(customerProfile/name, 'Customer ')"), 5, "one referral per MS-RequestId")
}
