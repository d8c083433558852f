package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The everyday co-sell jobs, played over stdio on the sandboxes as a
// client would: tools are chosen by name from tools/list (every argument
// checked against the listed input schema), record ids come from earlier
// results, and each job's outcome is read back through the tools.
//
// Per job the test records the tool calls, the bytes of their results (the
// text content, as the client receives it) and the upstream calls. Upstream
// calls are the change in `used` of every connection's budget as
// throttle_status reports it (it spends none) before and after the job; the
// server runs with a 24 h budget window, so no call leaves the window while
// the test runs. The throttle_status calls, the set-up of job 5 and the
// test's own checks after a job are not counted.
//
// COSELL_JOBS_TABLE names a file to write the table to, as Markdown.

// reviewBudget is the most the pipeline review may return: half of the
// 40.7 kB the review cost before list tools took `fields`.
const reviewBudget = 40_700 / 2

// referralField is the Pipedrive deal custom field that holds a Partner
// Center referral id, as pipedrive_add_deal's description names it.
const referralField = "Partner Center referral ID"

// coSellAgent calls tools by name as listed, counting for the job in play.
type coSellAgent struct {
	t     *testing.T
	s     *stdioSession
	args  map[string]map[string]bool // tool → its input schema's properties
	tally *jobTally                  // the job being played; nil between jobs
}

// jobTally is what one job cost.
type jobTally struct {
	name     string
	calls    int
	bytes    int
	upstream map[string]int // by connection
}

func (j *jobTally) upstreamTotal() int {
	n := 0
	for _, v := range j.upstream {
		n += v
	}
	return n
}

func newCoSellAgent(t *testing.T, s *stdioSession) *coSellAgent {
	t.Helper()
	list := s.request("tools/list", nil)
	require.NotNil(t, list["result"], "%v", list)
	a := &coSellAgent{t: t, s: s, args: map[string]map[string]bool{}}
	for _, raw := range list["result"].(map[string]any)["tools"].([]any) {
		tool := raw.(map[string]any)
		props := map[string]bool{}
		if schema, ok := tool["inputSchema"].(map[string]any); ok {
			if p, ok := schema["properties"].(map[string]any); ok {
				for name := range p {
					props[name] = true
				}
			}
		}
		a.args[tool["name"].(string)] = props
	}
	return a
}

// call calls a listed tool with arguments its schema names, fails the test
// on an error result, and returns the structured result.
func (a *coSellAgent) call(tool string, args map[string]any) map[string]any {
	a.t.Helper()
	props, listed := a.args[tool]
	require.True(a.t, listed, "%s is not in tools/list", tool)
	for name := range args {
		require.True(a.t, props[name], "%s has no argument %q in its listed input schema", tool, name)
	}
	resp := a.s.request("tools/call", map[string]any{"name": tool, "arguments": args})
	require.NotNil(a.t, resp["result"], "%s: %v", tool, resp)
	res := resp["result"].(map[string]any)
	var text strings.Builder
	for _, c := range res["content"].([]any) {
		if c, ok := c.(map[string]any); ok && c["type"] == "text" {
			text.WriteString(c["text"].(string))
		}
	}
	if a.tally != nil {
		a.tally.calls++
		a.tally.bytes += text.Len()
	}
	require.Nil(a.t, res["isError"], "%s(%v): %s", tool, args, text.String())
	sc, _ := res["structuredContent"].(map[string]any)
	require.NotNil(a.t, sc, "%s returned no structured content", tool)
	return sc
}

// used is every connection's spent budget, from throttle_status.
func (a *coSellAgent) used() map[string]int {
	a.t.Helper()
	tally := a.tally
	a.tally = nil
	defer func() { a.tally = tally }()
	out := map[string]int{}
	for _, c := range a.call("throttle_status", map[string]any{})["connections"].([]any) {
		c := c.(map[string]any)
		out[c["connection"].(string)] = int(c["used"].(float64))
	}
	return out
}

// play runs one job and tallies it.
func (a *coSellAgent) play(name string, job func()) *jobTally {
	a.t.Helper()
	before := a.used()
	a.tally = &jobTally{name: name}
	job()
	j := a.tally
	a.tally = nil
	after := a.used()
	j.upstream = map[string]int{}
	for conn, n := range after {
		if d := n - before[conn]; d != 0 {
			j.upstream[conn] = d
		}
	}
	return j
}

// resultRows returns the list member of a result as objects.
func resultRows(sc map[string]any, member string) []map[string]any {
	var out []map[string]any
	for _, r := range sc[member].([]any) {
		out = append(out, r.(map[string]any))
	}
	return out
}

// strField and numField read a member of a result.
func strField(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

func numField(m map[string]any, key string) float64 {
	f, _ := m[key].(float64)
	return f
}

// dig reads a nested member, e.g. digField(ref, "details", "dealValue").
func digField(m map[string]any, path ...string) any {
	var v any = m
	for _, p := range path {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = obj[p]
	}
	return v
}

func TestCoSellJobs(t *testing.T) {
	home := t.TempDir() // bulk files are read from the home folder: no roots, no --allowed-dirs
	s := startServerEnv(t, []string{"COSELL_STATE_DIR=" + stateDir(t), "HOME=" + home, "USERPROFILE=" + home},
		"--budget-limit", "100000", "--budget-window", "24h")
	s.initialize("2025-11-25")
	a := newCoSellAgent(t, s)
	today := time.Now().UTC()
	var jobs []*jobTally

	// 1. Triage: the new incoming referrals as compact rows, and the one of
	// highest value (in US dollars, so that values compare).
	var top map[string]any
	triageFields := []any{"name", "customer_name", "deal_value", "currency", "expires"}
	jobs = append(jobs, a.play("1. triage new referrals", func() {
		all := listAllPages(a, "partnercenter_list_referrals", "referrals",
			map[string]any{"status": "New", "direction": "Incoming", "limit": 100, "fields": triageFields})
		require.NotEmpty(t, all, "the sandbox holds new incoming referrals")
		for _, r := range all {
			for k := range r {
				assert.True(t, k == "id" || slices.Contains(triageFields, any(k)), "row member %s was not asked for", k)
			}
			if strField(r, "currency") == "USD" && (top == nil || numField(r, "deal_value") > numField(top, "deal_value")) {
				top = r
			}
		}
		require.NotNil(t, top, "a new incoming referral in USD")
	}))
	referralID := strField(top, "id")
	customer := strField(top, "customer_name")

	// 2. Accept it: read it for its eTag, then New → Active/Accepted.
	jobs = append(jobs, a.play("2. accept the referral", func() {
		ref := a.call("partnercenter_get_referral", map[string]any{"id": referralID})["referral"].(map[string]any)
		require.Equal(t, "New", ref["status"])
		got := a.call("partnercenter_update_referral_fields", map[string]any{"id": referralID, "etag": ref["eTag"],
			"status": "Active", "substatus": "Accepted"})["referral"].(map[string]any)
		assert.Equal(t, "Active", got["status"])
	}))
	ref := a.call("partnercenter_get_referral", map[string]any{"id": referralID})["referral"].(map[string]any)
	assert.Equal(t, []any{"Active", "Accepted"}, []any{ref["status"], ref["substatus"]}, "read back")

	// 3. Review the main pipeline as prompts/review_pipeline.md says, with
	// the fields it asks for.
	promptText := reviewPrompt(t, s, "Sales")
	reviewFields, limit := listDealsArgs(t, promptText)
	var pipelineID any
	var reviewed []map[string]any
	reviewArgs := func() map[string]any {
		for _, p := range resultRows(a.call("pipedrive_list_pipelines", map[string]any{}), "pipelines") {
			if strings.EqualFold(strField(p, "name"), "Sales") {
				pipelineID = p["id"]
			}
		}
		require.NotNil(t, pipelineID, "the seeded pipeline Sales")
		return map[string]any{"pipeline_id": pipelineID, "status": "open", "limit": limit}
	}
	review := a.play("3. review_pipeline", func() {
		reviewed = listAllPages(a, "pipedrive_list_deals", "deals", withArg(reviewArgs(), "fields", reviewFields))
	})
	jobs = append(jobs, review)
	require.NotEmpty(t, reviewed)
	for _, d := range reviewed {
		for k := range d {
			assert.True(t, k == "id" || slices.Contains(reviewFields, any(k)), "row member %s was not asked for", k)
		}
		assert.NotEmpty(t, d["title"])
		assert.True(t, d["stage_change_time"] != nil || d["add_time"] != nil, "deal %v: the review needs its stage age", d["id"])
	}
	// The same review as before list tools took fields, for comparison.
	var unprojected []map[string]any
	plain := a.play("review_pipeline without fields", func() {
		unprojected = listAllPages(a, "pipedrive_list_deals", "deals", reviewArgs())
	})
	assert.ElementsMatch(t, rowIDs(unprojected), rowIDs(reviewed), "fields drops members, never rows")
	t.Logf("review_pipeline: %d open deals, %d B of results (%d B/deal); without fields %d B (%d B/deal); budget %d B",
		len(reviewed), review.bytes, review.bytes/len(reviewed), plain.bytes, plain.bytes/len(unprojected), reviewBudget)
	assert.LessOrEqual(t, review.bytes, reviewBudget, "the review costs at most half of the 40.7 kB it did")
	assert.Less(t, review.bytes, plain.bytes*55/100, "fields cut the same review to about half")

	// 4. Change the value and expected close date of the deal the review
	// found stale the longest, found again by search.
	stageSince := func(d map[string]any) string {
		return cmp.Or(strField(d, "stage_change_time"), strField(d, "add_time"))
	}
	stalest := slices.MinFunc(reviewed, func(x, y map[string]any) int { return strings.Compare(stageSince(x), stageSince(y)) })
	newClose := today.AddDate(0, 3, 0).Format(time.DateOnly)
	var dealID, newValue any
	jobs = append(jobs, a.play("4. change a deal's value and close date", func() {
		hits := resultRows(a.call("pipedrive_search_deals", map[string]any{"term": strField(stalest, "title"), "status": "open"}), "deals")
		var hit map[string]any
		for _, h := range hits {
			if h["id"] == stalest["id"] {
				hit = h
			}
		}
		require.NotNil(t, hit, "search finds %q", stalest["title"])
		dealID = hit["id"]
		newValue = math.Round(numField(hit, "value")*1.1 + 1000)
		a.call("pipedrive_update_deal", map[string]any{"deal_id": dealID, "value": newValue, "expected_close_date": newClose})
		got := a.call("pipedrive_get_deal", map[string]any{"deal_id": dealID})
		assert.Equal(t, newValue, got["value"])
		assert.Equal(t, newClose, got["expected_close_date"])
	}))
	got := a.call("pipedrive_list_deals", map[string]any{"pipeline_id": pipelineID, "status": "open", "limit": 500, "fields": []any{"value", "expected_close_date"}})
	i := slices.IndexFunc(resultRows(got, "deals"), func(d map[string]any) bool { return d["id"] == dealID })
	require.GreaterOrEqual(t, i, 0)
	assert.Equal(t, newValue, resultRows(got, "deals")[i]["value"], "the list reads the new value too")
	assert.Equal(t, newClose, resultRows(got, "deals")[i]["expected_close_date"])

	// 5. A referral whose customer is new to the CRM: no deal, no
	// organization; create them linked to the customer. Set-up, not
	// counted: the co-sell referral, made in Partner Center.
	created := a.call("partnercenter_create_referral", map[string]any{
		"name": "Zephyr Robotics - Azure migration", "type": "Shared",
		"customer": map[string]any{"name": "Zephyr Robotics", "country": "US",
			"address":  map[string]any{"line1": "100 Harbor Way", "city": "Seattle"},
			"contacts": []any{map[string]any{"first_name": "Ada", "last_name": "Okonkwo", "email": "ada.okonkwo@zephyr-robotics.example", "phone": "+1 206 555 0142"}}},
		"details": map[string]any{"value": 250000, "currency": "USD", "closing_date": today.AddDate(0, 4, 0).Format(time.DateOnly)},
		"consent": map[string]any{"contact": true, "share_with_microsoft_sellers": true},
	})
	newRefID := strField(created["referral"].(map[string]any), "id")
	var newDealID any
	var orgName, personName string
	jobs = append(jobs, a.play("5. find or create the deal for a referral's customer", func() {
		r := a.call("partnercenter_get_referral", map[string]any{"id": newRefID})["referral"].(map[string]any)
		cust := r["customerProfile"].(map[string]any)
		orgName = strField(cust, "name")
		assert.Empty(t, resultRows(a.call("pipedrive_search_deals", map[string]any{"term": newRefID}), "deals"), "no deal holds the referral id")
		assert.Empty(t, resultRows(a.call("pipedrive_search_deals", map[string]any{"term": orgName}), "deals"), "no deal for the customer")
		assert.Empty(t, resultRows(a.call("pipedrive_search_organizations", map[string]any{"term": orgName}), "organizations"))
		addr := cust["address"].(map[string]any)
		org := a.call("pipedrive_add_organization", map[string]any{"name": orgName,
			"address": strings.Join([]string{strField(addr, "addressLine1"), strField(addr, "city"), strField(addr, "country")}, ", ")})
		contact := cust["team"].([]any)[0].(map[string]any)
		personName = strField(contact, "firstName") + " " + strField(contact, "lastName")
		assert.Empty(t, resultRows(a.call("pipedrive_search_persons", map[string]any{"term": contact["email"]}), "persons"))
		person := a.call("pipedrive_add_person", map[string]any{"name": personName, "emails": []any{contact["email"]},
			"phones": []any{contact["phoneNumber"]}, "org_id": org["id"]})
		details := r["details"].(map[string]any)
		deal := a.call("pipedrive_add_deal", map[string]any{"title": r["name"], "value": details["dealValue"], "currency": details["currency"],
			"expected_close_date": strField(details, "closingDateTime")[:len(time.DateOnly)], "org_id": org["id"], "person_id": person["id"],
			"custom_fields": map[string]any{referralField: newRefID}})
		newDealID = deal["id"]
		got := a.call("pipedrive_get_deal", map[string]any{"deal_id": newDealID})
		assert.Equal(t, org["id"], got["org_id"])
		assert.Equal(t, orgName, got["org_name"], "the deal shows the customer's organization")
		assert.Equal(t, personName, got["person_name"])
		assert.Equal(t, newRefID, digField(got, "custom_fields", referralField))
	}))
	hits := resultRows(a.call("pipedrive_search_deals", map[string]any{"term": newRefID}), "deals")
	require.Len(t, hits, 1, "the referral id finds the new deal")
	assert.Equal(t, newDealID, hits[0]["id"])
	assert.Equal(t, orgName, hits[0]["org_name"])
	people := resultRows(a.call("pipedrive_search_persons", map[string]any{"term": personName}), "persons")
	require.Len(t, people, 1)
	assert.Equal(t, orgName, people[0]["org_name"], "the contact belongs to the customer")

	// 6. Link the accepted referral to the customer's existing deal.
	var linkedID any
	jobs = append(jobs, a.play("6. link a referral to an existing deal", func() {
		assert.Empty(t, resultRows(a.call("pipedrive_search_deals", map[string]any{"term": referralID}), "deals"), "not linked yet")
		for _, d := range resultRows(a.call("pipedrive_search_deals", map[string]any{"term": customer, "status": "open"}), "deals") {
			if linkedID == nil {
				linkedID = d["id"]
			}
		}
		require.NotNil(t, linkedID, "%s has an open deal", customer)
		upd := a.call("pipedrive_update_deal", map[string]any{"deal_id": linkedID, "custom_fields": map[string]any{referralField: referralID}})
		assert.Equal(t, referralID, digField(upd, "custom_fields", referralField))
		a.call("pipedrive_add_note", map[string]any{"deal_id": linkedID,
			"content": fmt.Sprintf("Partner Center referral %s (%s) linked to this deal.", referralID, top["name"])})
		found := resultRows(a.call("pipedrive_search_deals", map[string]any{"term": referralID}), "deals")
		require.Len(t, found, 1, "the referral id finds the deal")
		assert.Equal(t, linkedID, found[0]["id"])
		assert.Equal(t, "custom_field", found[0]["matched_on"])
	}))
	notes := resultRows(a.call("pipedrive_list_notes", map[string]any{"deal_id": linkedID}), "notes")
	require.NotEmpty(t, notes)
	assert.Contains(t, strField(notes[0], "content"), referralID, "the newest note names the referral")

	// 7. Bulk-import opportunities from a CSV file given by path, with
	// the columns the integration names.
	var integration string
	var names []string
	jobs = append(jobs, a.play("7. WorkSpan bulk import from a file", func() {
		var cols []map[string]any
		for _, in := range resultRows(a.call("workspan_list_integrations", map[string]any{}), "integrations") {
			if strField(in, "type") == "CRM" && strField(in, "object_type") == "opportunity" {
				integration, cols = strField(in, "integration_id"), resultRows(in, "columns")
			}
		}
		require.NotEmpty(t, integration, "a CRM integration of opportunities")
		path := writeOpportunities(t, home, cols, &names)
		up := a.call("workspan_bulk_load_opportunities_file", map[string]any{"integration_id": integration, "path": path})
		require.Equal(t, float64(len(names)), up["rows"])
		var execs []any
		for _, e := range resultRows(up, "executions") {
			execs = append(execs, e["execution_id"])
		}
		// As the import prompt says: wait, and ask again until all completed.
		var st map[string]any
		for tries := 0; st == nil || st["all_completed"] != true; tries++ {
			require.Less(t, tries, 10, "the executions never complete: %v", st)
			st = a.call("workspan_get_bulk_load_status", map[string]any{"integration_id": integration, "execution_ids": execs, "wait": true, "wait_seconds": 60})
		}
		assert.Equal(t, map[string]any{"input": float64(len(names)), "success": float64(len(names)), "errors": 0.0, "skipped": 0.0}, st["totals"])
	}))
	assert.ElementsMatch(t, names, opportunitiesNamed(t, a, "Jobs e2e"), "WorkSpan holds the imported opportunities")

	// 8. The accepted referral is won: close it, then register the deal.
	jobs = append(jobs, a.play("8. register a won deal", func() {
		r := a.call("partnercenter_get_referral", map[string]any{"id": referralID})["referral"].(map[string]any)
		require.Equal(t, "Accepted", r["substatus"])
		won := a.call("partnercenter_update_referral_fields", map[string]any{"id": referralID, "etag": r["eTag"],
			"status": "Closed", "substatus": "Won"})["referral"].(map[string]any)
		var solutions []any
		if sols, ok := digField(won, "details", "requirements", "solutions").([]any); ok {
			for _, s := range sols {
				solutions = append(solutions, map[string]any{"id": s.(map[string]any)["id"]})
			}
		}
		require.NotEmpty(t, solutions, "the referral names the solutions")
		a.call("partnercenter_create_deal_registration", map[string]any{"id": referralID, "etag": won["eTag"],
			"contract": map[string]any{"value": digField(won, "details", "dealValue"), "currency": digField(won, "details", "currency"),
				"term": "Perpetual", "start_date": today.Format(time.DateOnly)},
			"solutions": solutions})
		got := a.call("partnercenter_get_referral", map[string]any{"id": referralID})["referral"].(map[string]any)
		assert.Equal(t, []any{"Closed", "Won"}, []any{got["status"], got["substatus"]})
		regs, _ := got["registrations"].([]any)
		require.Len(t, regs, 1, "the referral shows the registration")
		assert.Equal(t, digField(won, "details", "dealValue"), digField(regs[0].(map[string]any), "contract", "value"))
	}))

	// 9. Overdue follow-ups: mark the most overdue one done.
	var activityID any
	jobs = append(jobs, a.play("9. close an overdue follow-up", func() {
		due := resultRows(a.call("pipedrive_list_activities", map[string]any{"due": "overdue", "limit": 5}), "activities")
		require.NotEmpty(t, due, "the sandbox holds overdue activities")
		activityID = due[0]["id"]
		done := a.call("pipedrive_update_activity", map[string]any{"activity_id": activityID, "done": true})
		assert.Equal(t, true, done["done"])
	}))
	for _, act := range listAllPages(a, "pipedrive_list_activities", "activities", map[string]any{"due": "overdue", "limit": 500}) {
		assert.NotEqual(t, activityID, act["id"], "a done activity is no longer overdue")
	}

	for _, j := range jobs {
		assert.Positive(t, j.upstreamTotal(), "%s: every job reaches an upstream", j.name)
	}
	table := jobsTable(jobs, plain)
	t.Logf("co-sell jobs:\n%s", table)
	if path := os.Getenv("COSELL_JOBS_TABLE"); path != "" {
		require.NoError(t, os.WriteFile(path, []byte(table), 0o644))
	}
}

// reviewPrompt renders prompts/review_pipeline.md through prompts/get.
func reviewPrompt(t *testing.T, s *stdioSession, pipeline string) string {
	t.Helper()
	resp := s.request("prompts/get", map[string]any{"name": "review_pipeline", "arguments": map[string]any{"pipeline": pipeline}})
	require.NotNil(t, resp["result"], "%v", resp)
	return resp["result"].(map[string]any)["messages"].([]any)[0].(map[string]any)["content"].(map[string]any)["text"].(string)
}

var (
	promptFields = regexp.MustCompile("`fields: (\\[[^\\]]*\\])`")
	promptLimit  = regexp.MustCompile("`limit: ([0-9]+)`")
)

// listDealsArgs reads the fields and page size the review prompt asks
// pipedrive_list_deals for.
func listDealsArgs(t *testing.T, prompt string) (fields []any, limit int) {
	t.Helper()
	m := promptFields.FindStringSubmatch(prompt)
	require.NotNil(t, m, "the review prompt asks for fields:\n%s", prompt)
	require.NoError(t, json.Unmarshal([]byte(m[1]), &fields))
	require.NotEmpty(t, fields)
	l := promptLimit.FindStringSubmatch(prompt)
	require.NotNil(t, l, "the review prompt gives a limit")
	limit, err := strconv.Atoi(l[1])
	require.NoError(t, err)
	return fields, limit
}

// listAllPages calls a list tool, passing next_cursor as cursor while
// has_more is true, and returns the rows of every page.
func listAllPages(a *coSellAgent, tool, member string, args map[string]any) []map[string]any {
	a.t.Helper()
	var out []map[string]any
	for {
		page := a.call(tool, args)
		out = append(out, resultRows(page, member)...)
		if page["has_more"] != true {
			return out
		}
		args = withArg(args, "cursor", page["next_cursor"])
	}
}

// withArg returns a copy of m with key set to v.
func withArg(m map[string]any, key string, v any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for k, x := range m {
		out[k] = x
	}
	out[key] = v
	return out
}

func rowIDs(rs []map[string]any) []any {
	var out []any
	for _, r := range rs {
		out = append(out, r["id"])
	}
	return out
}

// writeOpportunities writes a CSV of two opportunities under dir with the
// columns the integration lists (its required ones and the usual deal
// fields it has), and returns its path.
func writeOpportunities(t *testing.T, dir string, cols []map[string]any, names *[]string) string {
	t.Helper()
	has := map[string]map[string]any{}
	for _, c := range cols {
		has[strField(c, "name")] = c
	}
	stage := func() string {
		vals, _ := has["stage"]["values"].([]any)
		for _, v := range vals {
			if v == "Qualify" {
				return "Qualify"
			}
		}
		require.NotEmpty(t, vals, "the stage column lists its values")
		return vals[0].(string)
	}
	values := map[string]func(i int) string{
		"name":               func(i int) string { return fmt.Sprintf("Jobs e2e opportunity %d", i+1) },
		"stage":              func(int) string { return stage() },
		"account_name":       func(int) string { return "Contoso Ltd" },
		"amount":             func(i int) string { return strconv.Itoa(50000 * (i + 1)) },
		"currency":           func(int) string { return "USD" },
		"close_date":         func(i int) string { return time.Now().UTC().AddDate(0, 2+i, 0).Format(time.DateOnly) },
		"crm_opportunity_id": func(i int) string { return fmt.Sprintf("jobs-e2e-%d", i+1) },
	}
	var header []string
	for _, c := range cols {
		if c["required"] == true {
			_, known := values[strField(c, "name")]
			require.True(t, known, "required column %s", c["name"])
			header = append(header, strField(c, "name"))
		}
	}
	for _, name := range []string{"account_name", "amount", "currency", "close_date", "crm_opportunity_id"} {
		if has[name] != nil && !slices.Contains(header, name) {
			header = append(header, name)
		}
	}
	require.Contains(t, header, "name")
	lines := []string{strings.Join(header, ",")}
	for i := range 2 {
		var cells []string
		for _, h := range header {
			cells = append(cells, values[h](i))
		}
		lines = append(lines, strings.Join(cells, ","))
		*names = append(*names, values["name"](i))
	}
	path := filepath.Join(dir, "opportunities.csv")
	require.NoError(t, os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600))
	return path
}

// opportunitiesNamed reads the names of the WorkSpan opportunities whose
// name starts with prefix, from the report of all opportunities.
func opportunitiesNamed(t *testing.T, a *coSellAgent, prefix string) []string {
	t.Helper()
	var report any
	for _, r := range resultRows(a.call("workspan_list_reports", map[string]any{}), "reports") {
		if strField(r, "name") == "All opportunities" {
			report = r["id"]
		}
	}
	require.NotNil(t, report, "the report of all opportunities")
	data := a.call("workspan_read_report_data", map[string]any{"report_id": report,
		"filters": []any{map[string]any{"col_id": "name", "type": "TEXT", "op": "START_WITH", "values": []any{prefix}}}})
	var out []string
	for _, r := range resultRows(data, "rows") {
		out = append(out, strField(r, "name"))
	}
	return out
}

// jobsTable renders the tallies as Markdown, with the review as it was
// before list tools took fields for reference.
func jobsTable(jobs []*jobTally, reviewBefore *jobTally) string {
	var b strings.Builder
	b.WriteString("| job | tool calls | result bytes | upstream calls |\n|---|---:|---:|---:|\n")
	for _, j := range jobs {
		conns := make([]string, 0, len(j.upstream))
		for c, n := range j.upstream {
			conns = append(conns, fmt.Sprintf("%s %d", c, n))
		}
		sort.Strings(conns)
		fmt.Fprintf(&b, "| %s | %d | %d | %d (%s) |\n", j.name, j.calls, j.bytes, j.upstreamTotal(), strings.Join(conns, ", "))
	}
	fmt.Fprintf(&b, "\nResult bytes are the text content of the tool results. Upstream calls are the change in each connection's "+
		"budget use (throttle_status, which costs none) over the job. For reference, the review without `fields` returns %d bytes.\n",
		reviewBefore.bytes)
	return b.String()
}
