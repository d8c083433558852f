package tools_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cosell-mcp/cosell-mcp/connectors/partnercenter"
	"github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
	"github.com/cosell-mcp/cosell-mcp/connectors/workspan"
	"github.com/cosell-mcp/cosell-mcp/internal/bulkfile/bulkfiletest"
	"github.com/cosell-mcp/cosell-mcp/internal/clock"
	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
	"github.com/cosell-mcp/cosell-mcp/tools"
	pctools "github.com/cosell-mcp/cosell-mcp/tools/partnercenter"
	pdtools "github.com/cosell-mcp/cosell-mcp/tools/pipedrive"
	wstools "github.com/cosell-mcp/cosell-mcp/tools/workspan"
)

// errOffline is every upstream's answer in the fuzz test: no call leaves
// the process.
var errOffline = errors.New("fuzz: offline")

// offline fails every request and counts them.
type offline struct{ calls *atomic.Int64 }

func (o offline) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
	o.calls.Add(1)
	return nil, errOffline
}

// fuzzTools is the registry's connector tools (Pipedrive, Partner Center,
// WorkSpan, throttle status) over clients whose upstream is offline, and
// the WorkSpan file tools' one allowed folder; sorted by name.
func fuzzTools(f *testing.F, calls *atomic.Int64) ([]tools.Tool, string) {
	hc := &http.Client{Transport: offline{calls}}
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "deals.csv"), []byte("name,stage\nA,Qualify\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bomb.xlsx"), bulkfiletest.SheetBomb(), 0o600); err != nil {
		f.Fatal(err)
	}
	fc := clock.NewFake(time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC))
	f.Cleanup(fc.AutoAdvance(context.Background()))
	budgets := throttle.NewRegistry(throttle.Config{})
	var ts []tools.Tool
	ts = append(ts, tools.ThrottleStatusTool(budgets))
	ts = append(ts, pdtools.Tools(pdtools.Static(pipedrive.New("token", pipedrive.WithHTTPClient(hc), pipedrive.WithBaseURL("http://pipedrive.invalid"), pipedrive.WithClock(fc))))...)
	ts = append(ts, pctools.Tools(pctools.Static(partnercenter.New(partnercenter.StaticToken("token"), partnercenter.WithHTTPClient(hc),
		partnercenter.WithBaseURL("http://partnercenter.invalid"), partnercenter.WithClock(fc))))...)
	ts = append(ts, wstools.Tools(workspan.New(workspan.Config{BaseURL: "http://workspan.invalid", HostName: "app.workspan.invalid",
		AppUserID: "user", AppUserSecret: "secret", HTTPClient: hc, TokenHTTPClient: hc}),
		wstools.Options{AllowedDirs: []string{dir}, Clock: fc, Budget: budgets.Budget(wstools.Toolset)})...)
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	return ts, dir
}

// example builds plausible arguments from a tool's input schema: every
// required property with a value of its type (the first enum value, a date
// for format date, …), so that seeds get past validation into handlers.
func example(schema map[string]any) any {
	if enum, ok := schema["enum"].([]any); ok && len(enum) > 0 {
		return enum[0]
	}
	switch schema["type"] {
	case "string":
		switch {
		case schema["format"] == "date":
			return "2026-11-02"
		case schema["format"] == "email":
			return "ana@contoso.example"
		case schema["pattern"] == "^[A-Z]{3}$":
			return "USD"
		case schema["pattern"] == "^[A-Za-z]{2}$":
			return "US"
		}
		if n, ok := schema["minLength"].(float64); ok && n > 1 {
			return strings.Repeat("x", int(n))
		}
		return "x"
	case "integer", "number":
		return 1
	case "boolean":
		return true
	case "array":
		if items, ok := schema["items"].(map[string]any); ok {
			return []any{example(items)}
		}
		return []any{}
	case "object":
		out := map[string]any{}
		props, _ := schema["properties"].(map[string]any)
		req, _ := schema["required"].([]any)
		for _, r := range req {
			if p, ok := props[r.(string)].(map[string]any); ok {
				out[r.(string)] = example(p)
			}
		}
		return out
	}
	return nil
}

// FuzzToolArguments calls the registry's tools with arbitrary argument
// JSON. Whatever the arguments: no panic; every error is a *tools.Error
// (what the caller gets, with a code of the DESIGN's list) or one that
// tools.AsError maps to invalid_argument, except the offline upstream's own
// failure once the arguments were accepted; and an invalid_argument refusal
// sends nothing upstream.
func FuzzToolArguments(f *testing.F) {
	var calls atomic.Int64
	ts, dir := fuzzTools(f, &calls)
	codes := map[string]bool{tools.CodeInvalidArgument: true, tools.CodeNotFound: true, tools.CodeConflict: true, tools.CodeThrottled: true,
		tools.CodeUnauthorized: true, tools.CodeForbidden: true, tools.CodeUpstreamError: true, tools.CodeUnavailable: true}

	for i, tl := range ts {
		var schema map[string]any
		if err := json.Unmarshal(tl.InputSchema, &schema); err != nil {
			f.Fatal(err)
		}
		valid, _ := json.Marshal(example(schema))
		for _, args := range []string{string(valid), `{}`, `null`, ``, `[]`, `{"unknown":1}`, `{"limit":1e309}`, `{"deal_id":-1}`, `{"deal_id":18446744073709551617}`} {
			f.Add(uint8(i), []byte(args))
		}
	}
	byName := func(name string) uint8 {
		for i, tl := range ts {
			if tl.Name == name {
				return uint8(i)
			}
		}
		f.Fatalf("no tool %s", name)
		return 0
	}
	bulk, file := byName("workspan_bulk_load_data"), byName("workspan_bulk_load_opportunities_file")
	for _, args := range []string{
		`{"integration_id":"i","data":"a,b\n1,2\n","column_delimiter":"\u0000"}`,
		`{"integration_id":"i","data":"a;b\n1;2\n","column_delimiter":";"}`,
		`{"integration_id":"i","data":"PATH=/bin\u0000SECRET=x;y\u0000","format":"csv"}`,
		`{"integration_id":"i","data":"[{\"a\":{\"b\":1}}]","format":"json"}`,
	} {
		f.Add(bulk, []byte(args))
	}
	for _, args := range []string{
		`{"integration_id":"i","path":"/etc/passwd"}`,
		`{"integration_id":"i","path":"/proc/self/environ","format":"csv"}`,
		`{"integration_id":"i","path":"../../../../etc/shadow"}`,
		`{"integration_id":"i","path":"deals.csv"}`,
		`{"integration_id":"i","path":"` + filepath.Join(dir, "bomb.xlsx") + `"}`,
		`{"integration_id":"i","path":"` + filepath.Join(dir, "deals.csv") + `"}`,
		`{"integration_id":"i","path":"` + filepath.Join(dir, "..", "deals.csv") + `"}`,
		`{"integration_id":"i","content_base64":"` + base64.StdEncoding.EncodeToString(bulkfiletest.SmallBomb()) + `","filename":"b.xlsx"}`,
		`{"integration_id":"i","content_base64":"%%%"}`,
		`{"integration_id":"i","path":"x","content_base64":"eA=="}`,
		`{"integration_id":"i","content_base64":"bmFtZQphCg==","filename":"` + strings.Repeat("\u202e", 100) + `.csv","has_header_row":false}`,
	} {
		f.Add(file, []byte(args))
	}
	f.Add(byName("workspan_read_report_data"), []byte(`{"report_id":1,"filters":[{"col_id":"a","type":"NUMBER","op":"BETWEEN","values":["1"]}],"cursor":"\u0000"}`))
	f.Add(byName("pipedrive_add_deal"), []byte(`{"title":"t","custom_fields":{"`+strings.Repeat("k", 1000)+`":{"nested":[1,2,{"x":null}]}}}`))
	f.Add(byName("partnercenter_list_referrals"), []byte(`{"filter":"status eq 'x' or 1 eq 1","limit":100000}`))
	f.Add(byName("workspan_get_bulk_load_status"), []byte(`{"integration_id":"i","execution_ids":["a"],"wait":true,"wait_seconds":600}`))
	f.Add(uint8(0), []byte(strings.Repeat("[", 100000)))

	f.Fuzz(func(t *testing.T, which uint8, args []byte) {
		tl := ts[int(which)%len(ts)]
		before := calls.Load()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := tl.Call(ctx, json.RawMessage(args))
		if err == nil {
			return
		}
		var te *tools.Error
		if !errors.As(err, &te) {
			if errors.Is(err, errOffline) && calls.Load() > before {
				return // accepted, then the upstream failed
			}
			// A connector's own argument check (e.g. partnercenter's
			// ErrInvalidArgument for an id of spaces) is mapped by
			// tools.AsError, the one mapping the server applies.
			if te = tools.AsError(err); te.Code != tools.CodeInvalidArgument {
				t.Fatalf("%s %.200q: not a *tools.Error: %T %v", tl.Name, args, err, err)
			}
		}
		if !codes[te.Code] || te.Message == "" {
			t.Fatalf("%s: error code %q, message %q", tl.Name, te.Code, te.Message)
		}
		if te.Code == tools.CodeInvalidArgument && calls.Load() != before {
			t.Fatalf("%s %.200q: refused as invalid_argument (%s) after %d upstream calls", tl.Name, args, te.Message, calls.Load()-before)
		}
	})
}
