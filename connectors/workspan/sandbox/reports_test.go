package sandbox

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func (e *env) reportID(name string) string {
	e.t.Helper()
	e.srv.mu.Lock()
	defer e.srv.mu.Unlock()
	for _, r := range e.srv.reports {
		if r.Name == name {
			return fmt.Sprint(r.ID)
		}
	}
	e.t.Fatalf("no report %q", name)
	return ""
}

func rowsOf(body map[string]any) []map[string]any {
	var out []map[string]any
	for _, r := range body["results"].([]any) {
		out = append(out, r.(map[string]any))
	}
	return out
}

func idsOf(rows []map[string]any) []string {
	out := []string{}
	for _, r := range rows {
		out = append(out, r["opportunity_id"].(string))
	}
	return out
}

func TestReportList(t *testing.T) {
	e := newEnv(t, Options{})
	all := e.call(http.MethodPost, "/report/v1/list", nil).ok(t, http.StatusOK)
	assert.Equal(t, true, all["endOfList"])
	reports := all["results"].([]any)
	require.Len(t, reports, 12)
	first := reports[0].(map[string]any)
	for _, k := range []string{"id", "name", "description", "createdAt", "createdBy", "modifiedAt", "modifiedBy", "reportStatus"} {
		assert.Contains(t, first, k)
	}
	assert.IsType(t, float64(0), first["id"])
	assert.NotEmpty(t, first["createdBy"].(map[string]any)["id"])
	statuses := map[any]int{}
	for _, r := range reports {
		statuses[r.(map[string]any)["reportStatus"]]++
	}
	assert.Equal(t, map[any]int{"PUBLISHED": 10, "DRAFT": 2}, statuses)

	var paged []any
	for n, want := range []struct {
		count int
		end   bool
	}{{5, false}, {5, false}, {2, true}, {0, true}} {
		page := e.call(http.MethodPost, "/report/v1/list", map[string]any{"page": map[string]any{"number": n, "size": 5}}).ok(t, http.StatusOK)
		assert.Len(t, page["results"], want.count, "page %d", n)
		assert.Equal(t, want.end, page["endOfList"], "page %d", n)
		paged = append(paged, page["results"].([]any)...)
	}
	assert.Equal(t, reports, paged)
	exact := e.call(http.MethodPost, "/report/v1/list", map[string]any{"page": map[string]any{"number": 1, "size": 6}}).ok(t, http.StatusOK)
	assert.Equal(t, true, exact["endOfList"])

	for _, page := range []map[string]any{{"size": 0}, {"size": 10001}, {"number": -1}, {"size": 1.5}, {"number": "x"}} {
		e.call(http.MethodPost, "/report/v1/list", map[string]any{"page": page}).failed(t, http.StatusBadRequest)
	}
	e.call(http.MethodPost, "/report/v1/list", map[string]any{"page": map[string]any{"size": 10000}}).ok(t, http.StatusOK)
}

func ff(col, typ, op string, negate bool, values ...any) map[string]any {
	if values == nil {
		values = []any{}
	}
	return map[string]any{"colId": col, "type": typ, "filter": map[string]any{"negate": negate, "op": op, "values": values}}
}

func TestReportDataFilters(t *testing.T) {
	e := newEnv(t, Options{})
	id := e.reportID("All opportunities")
	read := func(body map[string]any) []map[string]any {
		t.Helper()
		if body == nil {
			body = map[string]any{}
		}
		if body["page"] == nil {
			body["page"] = map[string]any{"number": 0, "size": 10000}
		}
		res := e.call(http.MethodPost, "/report/v1/"+id+"/data", body).ok(t, http.StatusOK)
		assert.Equal(t, true, res["endOfList"])
		return rowsOf(res)
	}
	all := read(nil)
	require.Len(t, all, 40)
	for _, c := range reportColumns {
		assert.Contains(t, all[0], c.id)
	}

	num := func(r map[string]any, col string) (float64, bool) {
		f, ok := r[col].(float64)
		return f, ok
	}
	str := func(r map[string]any, col string) string { s, _ := r[col].(string); return s }
	day := testNow.Format(dateLayout)
	in90 := testNow.AddDate(0, 0, 90).Format(dateLayout)
	firstCreated := str(all[5], "created_at")

	cases := []struct {
		name    string
		filters map[string]any
		want    func(r map[string]any) bool
	}{
		{"text equal ignores case", map[string]any{"fieldFilters": []any{ff("stage", "TEXT", "EQUAL_TO", false, "closed WON")}},
			func(r map[string]any) bool { return r["stage"] == "Closed Won" }},
		{"text is empty", map[string]any{"fieldFilters": []any{ff("crm_opportunity_id", "TEXT", "IS_EMPTY", false)}},
			func(r map[string]any) bool { return r["crm_opportunity_id"] == nil }},
		{"text is not empty", map[string]any{"fieldFilters": []any{ff("crm_opportunity_id", "TEXT", "IS_EMPTY", true)}},
			func(r map[string]any) bool { return r["crm_opportunity_id"] != nil }},
		{"contain", map[string]any{"fieldFilters": []any{ff("name", "TEXT", "CONTAIN", false, "AZURE")}},
			func(r map[string]any) bool { return strings.Contains(strings.ToLower(str(r, "name")), "azure") }},
		{"start with", map[string]any{"fieldFilters": []any{ff("name", "TEXT", "START_WITH", false, "contoso")}},
			func(r map[string]any) bool { return strings.HasPrefix(str(r, "name"), "Contoso") }},
		{"end with, negated", map[string]any{"fieldFilters": []any{ff("name", "TEXT", "END_WITH", true, "migration")}},
			func(r map[string]any) bool { return !strings.HasSuffix(str(r, "name"), "migration") }},
		{"in", map[string]any{"fieldFilters": []any{ff("country", "TEXT", "IN", false, "US", "gb")}},
			func(r map[string]any) bool { return r["country"] == "US" || r["country"] == "GB" }},
		{"currency greater than", map[string]any{"fieldFilters": []any{ff("amount", "CURRENCY", "GREATER_THAN", false, 250000)}},
			func(r map[string]any) bool { f, ok := num(r, "amount"); return ok && f > 250000 }},
		{"number less than, string value", map[string]any{"fieldFilters": []any{ff("amount", "NUMBER", "LESS_THAN", false, "50000")}},
			func(r map[string]any) bool { f, ok := num(r, "amount"); return ok && f < 50000 }},
		{"decimal greater or equal", map[string]any{"fieldFilters": []any{ff("probability", "DECIMAL", "GREATER_THAN_OR_EQUAL_TO", false, 60)}},
			func(r map[string]any) bool { f, _ := num(r, "probability"); return f >= 60 }},
		{"number less or equal", map[string]any{"fieldFilters": []any{ff("probability", "NUMBER", "LESS_THAN_OR_EQUAL_TO", false, 20)}},
			func(r map[string]any) bool { f, _ := num(r, "probability"); return f <= 20 }},
		{"currency between", map[string]any{"fieldFilters": []any{ff("amount", "CURRENCY", "BETWEEN", false, 100000, 200000)}},
			func(r map[string]any) bool { f, ok := num(r, "amount"); return ok && f >= 100000 && f <= 200000 }},
		{"number equal negated", map[string]any{"fieldFilters": []any{ff("probability", "NUMBER", "EQUAL_TO", true, 100)}},
			func(r map[string]any) bool { f, _ := num(r, "probability"); return f != 100 }},
		{"amount is empty", map[string]any{"fieldFilters": []any{ff("amount", "CURRENCY", "IS_EMPTY", false)}},
			func(r map[string]any) bool { return r["amount"] == nil }},
		{"date greater than", map[string]any{"fieldFilters": []any{ff("close_date", "DATE", "GREATER_THAN", false, day)}},
			func(r map[string]any) bool { return str(r, "close_date") > day }},
		{"date between", map[string]any{"fieldFilters": []any{ff("close_date", "DATE", "BETWEEN", false, day, in90)}},
			func(r map[string]any) bool { d := str(r, "close_date"); return d >= day && d <= in90 }},
		{"date time less than", map[string]any{"fieldFilters": []any{ff("created_at", "DATE_TIME", "LESS_THAN", false, "2026-06-01T00:00:00Z")}},
			func(r map[string]any) bool { return str(r, "created_at") < "2026-06-01" }},
		{"date on a date time column compares days", map[string]any{"fieldFilters": []any{ff("created_at", "DATE", "EQUAL_TO", false, firstCreated[:10])}},
			func(r map[string]any) bool { return str(r, "created_at")[:10] == firstCreated[:10] }},
		{"boolean", map[string]any{"fieldFilters": []any{ff("is_closed", "BOOLEAN", "EQUAL_TO", false, true)}},
			func(r map[string]any) bool { return r["is_closed"] == true }},
		{"boolean negated", map[string]any{"fieldFilters": []any{ff("is_closed", "BOOLEAN", "EQUAL_TO", true, "true")}},
			func(r map[string]any) bool { return r["is_closed"] == false }},
		{"and", map[string]any{"op": "AND", "fieldFilters": []any{
			ff("stage", "TEXT", "IN", false, "Prospect", "Qualify"), ff("partner", "TEXT", "EQUAL_TO", false, "Microsoft")}},
			func(r map[string]any) bool {
				return (r["stage"] == "Prospect" || r["stage"] == "Qualify") && r["partner"] == "Microsoft"
			}},
		{"and is the default", map[string]any{"fieldFilters": []any{
			ff("is_closed", "BOOLEAN", "EQUAL_TO", false, false), ff("country", "TEXT", "EQUAL_TO", false, "US")}},
			func(r map[string]any) bool { return r["is_closed"] == false && r["country"] == "US" }},
		{"or", map[string]any{"op": "OR", "fieldFilters": []any{
			ff("stage", "TEXT", "EQUAL_TO", false, "Closed Won"), ff("amount", "NUMBER", "GREATER_THAN", false, 400000)}},
			func(r map[string]any) bool {
				f, ok := num(r, "amount")
				return r["stage"] == "Closed Won" || (ok && f > 400000)
			}},
		{"no field filters", map[string]any{"op": "OR", "fieldFilters": []any{}},
			func(map[string]any) bool { return true }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var want []map[string]any
			for _, r := range all {
				if c.want(r) {
					want = append(want, r)
				}
			}
			got := read(map[string]any{"filters": c.filters})
			assert.Equal(t, idsOf(want), idsOf(got))
			if !strings.Contains(c.name, "no field") && !strings.Contains(c.name, "negated") && !strings.Contains(c.name, "not") {
				assert.Less(t, len(want), len(all), "the case should filter something")
			}
			assert.NotEmpty(t, want, "the case should keep something")
		})
	}
}

func TestReportDataRejects(t *testing.T) {
	e := newEnv(t, Options{})
	id := e.reportID("All opportunities")
	path := "/report/v1/" + id + "/data"
	bad := []struct {
		name string
		body map[string]any
	}{
		{"unknown column", map[string]any{"filters": map[string]any{"fieldFilters": []any{ff("nope", "TEXT", "EQUAL_TO", false, "x")}}}},
		{"unsupported type", map[string]any{"filters": map[string]any{"fieldFilters": []any{ff("name", "TEXT_REPEATED", "EQUAL_TO", false, "x")}}}},
		{"offset type", map[string]any{"filters": map[string]any{"fieldFilters": []any{ff("close_date", "DATE_OFFSET", "EQUAL_TO", false, "x")}}}},
		{"unknown type", map[string]any{"filters": map[string]any{"fieldFilters": []any{ff("name", "STRING", "EQUAL_TO", false, "x")}}}},
		{"type does not fit column", map[string]any{"filters": map[string]any{"fieldFilters": []any{ff("name", "NUMBER", "EQUAL_TO", false, 1)}}}},
		{"offset op", map[string]any{"filters": map[string]any{"fieldFilters": []any{ff("close_date", "DATE", "OFFSET", false, 7)}}}},
		{"unknown op", map[string]any{"filters": map[string]any{"fieldFilters": []any{ff("name", "TEXT", "LIKE", false, "x")}}}},
		{"ordered op on text", map[string]any{"filters": map[string]any{"fieldFilters": []any{ff("name", "TEXT", "GREATER_THAN", false, "x")}}}},
		{"between on boolean", map[string]any{"filters": map[string]any{"fieldFilters": []any{ff("is_closed", "BOOLEAN", "BETWEEN", false, true, false)}}}},
		{"contain on number", map[string]any{"filters": map[string]any{"fieldFilters": []any{ff("amount", "NUMBER", "CONTAIN", false, 1)}}}},
		{"two values for equal", map[string]any{"filters": map[string]any{"fieldFilters": []any{ff("name", "TEXT", "EQUAL_TO", false, "a", "b")}}}},
		{"one value for between", map[string]any{"filters": map[string]any{"fieldFilters": []any{ff("amount", "NUMBER", "BETWEEN", false, 1)}}}},
		{"no value for in", map[string]any{"filters": map[string]any{"fieldFilters": []any{ff("name", "TEXT", "IN", false)}}}},
		{"bad number", map[string]any{"filters": map[string]any{"fieldFilters": []any{ff("amount", "NUMBER", "EQUAL_TO", false, "abc")}}}},
		{"bad date", map[string]any{"filters": map[string]any{"fieldFilters": []any{ff("close_date", "DATE", "EQUAL_TO", false, "15/09/2026")}}}},
		{"bad boolean", map[string]any{"filters": map[string]any{"fieldFilters": []any{ff("is_closed", "BOOLEAN", "EQUAL_TO", false, "yes")}}}},
		{"missing filter", map[string]any{"filters": map[string]any{"fieldFilters": []any{map[string]any{"colId": "name", "type": "TEXT"}}}}},
		{"bad combinator", map[string]any{"filters": map[string]any{"op": "XOR", "fieldFilters": []any{}}}},
		{"size 0", map[string]any{"page": map[string]any{"number": 0, "size": 0}}},
		{"size too large", map[string]any{"page": map[string]any{"number": 0, "size": 10001}}},
		{"negative page", map[string]any{"page": map[string]any{"number": -1, "size": 10}}},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			e.call(http.MethodPost, path, c.body).failed(t, http.StatusBadRequest)
		})
	}
	e.call(http.MethodPost, "/report/v1/abc/data", nil).failed(t, http.StatusBadRequest)
	e.call(http.MethodPost, "/report/v1/42/data", nil).failed(t, http.StatusNotFound)
	e.call(http.MethodPost, path, "{", "Content-Type", "application/json").failed(t, http.StatusBadRequest)
}

func TestReportDataPagingAndViews(t *testing.T) {
	e := newEnv(t, Options{})
	path := "/report/v1/" + e.reportID("All opportunities") + "/data"

	def := e.call(http.MethodPost, path, nil).ok(t, http.StatusOK)
	assert.Len(t, def["results"], 40, "default page size is 500")
	assert.Equal(t, true, def["endOfList"])
	version := def["version"].(float64)

	var ids []string
	for n := 0; ; n++ {
		page := e.call(http.MethodPost, path, map[string]any{"page": map[string]any{"number": n, "size": 15}}).ok(t, http.StatusOK)
		ids = append(ids, idsOf(rowsOf(page))...)
		if page["endOfList"] == true {
			assert.Equal(t, 2, n)
			break
		}
	}
	assert.Equal(t, idsOf(rowsOf(def)), ids)

	// Views: the closed won report only holds Closed Won rows.
	won := rowsOf(e.call(http.MethodPost, "/report/v1/"+e.reportID("Closed won")+"/data", nil).ok(t, http.StatusOK))
	require.NotEmpty(t, won)
	for _, r := range won {
		assert.Equal(t, "Closed Won", r["stage"])
	}

	// A bulk load shows up, with a new version.
	e.load("/bulk/v1/bulkload?integration_id=int-crm-001", "name,stage,amount,currency,close_date,partner,country\nReport probe,Closed Won,777,EUR,2026-09-01,Microsoft,FR\n")
	after := e.call(http.MethodPost, path, map[string]any{"filters": map[string]any{"fieldFilters": []any{
		ff("name", "TEXT", "EQUAL_TO", false, "Report probe")}}}).ok(t, http.StatusOK)
	rows := rowsOf(after)
	require.Len(t, rows, 1)
	assert.Equal(t, 777.0, rows[0]["amount"])
	assert.Equal(t, "2026-09-01", rows[0]["close_date"])
	assert.Greater(t, after["version"].(float64), version)
	won2 := rowsOf(e.call(http.MethodPost, "/report/v1/"+e.reportID("Closed won")+"/data", nil).ok(t, http.StatusOK))
	assert.Len(t, won2, len(won)+1)
	assert.True(t, slices.Contains(idsOf(won2), rows[0]["opportunity_id"].(string)))
}
