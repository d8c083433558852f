package prompts

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// knownTools is the tool catalogue (`mcp-server tools --json`): name → toolset
// and whether the tool is read-only.
var knownTools = map[string]struct {
	toolset  string
	readOnly bool
}{
	"connection_status":                        {"server", true},
	"partnercenter_create_deal_registration":   {"partnercenter", false},
	"partnercenter_create_referral":            {"partnercenter", false},
	"partnercenter_get_referral":               {"partnercenter", true},
	"partnercenter_list_referrals":             {"partnercenter", true},
	"partnercenter_update_deal_registration":   {"partnercenter", false},
	"partnercenter_update_referral_deprecated": {"partnercenter", false},
	"partnercenter_update_referral_fields":     {"partnercenter", false},
	"pipedrive_add_activity":                   {"pipedrive", false},
	"pipedrive_add_deal":                       {"pipedrive", false},
	"pipedrive_add_deal_deprecated":            {"pipedrive", false},
	"pipedrive_add_note":                       {"pipedrive", false},
	"pipedrive_add_organization":               {"pipedrive", false},
	"pipedrive_add_person":                     {"pipedrive", false},
	"pipedrive_get_deal":                       {"pipedrive", true},
	"pipedrive_get_organization":               {"pipedrive", true},
	"pipedrive_get_person":                     {"pipedrive", true},
	"pipedrive_get_stage":                      {"pipedrive", true},
	"pipedrive_list_activities":                {"pipedrive", true},
	"pipedrive_list_deals":                     {"pipedrive", true},
	"pipedrive_list_notes":                     {"pipedrive", true},
	"pipedrive_list_pipelines":                 {"pipedrive", true},
	"pipedrive_search_deals":                   {"pipedrive", true},
	"pipedrive_search_organizations":           {"pipedrive", true},
	"pipedrive_search_persons":                 {"pipedrive", true},
	"pipedrive_update_activity":                {"pipedrive", false},
	"pipedrive_update_deal":                    {"pipedrive", false},
	"pipedrive_update_deal_stage":              {"pipedrive", false},
	"pipedrive_update_deal_stage_deprecated":   {"pipedrive", false},
	"pipedrive_update_deal_status":             {"pipedrive", false},
	"pipedrive_update_organization":            {"pipedrive", false},
	"pipedrive_update_person":                  {"pipedrive", false},
	"throttle_status":                          {"server", true},
	"trigger_list":                             {"triggers", true},
	"trigger_read_events":                      {"triggers", true},
	"trigger_start":                            {"triggers", false},
	"trigger_stop":                             {"triggers", false},
	"workspan_add_audit":                       {"workspan", false},
	"workspan_bulk_load_data":                  {"workspan", false},
	"workspan_bulk_load_data_file":             {"workspan", false},
	"workspan_bulk_load_opportunities":         {"workspan", false},
	"workspan_bulk_load_opportunities_file":    {"workspan", false},
	"workspan_connect_external_id":             {"workspan", false},
	"workspan_get_bulk_load_status":            {"workspan", true},
	"workspan_get_external_id":                 {"workspan", true},
	"workspan_list_integrations":               {"workspan", true},
	"workspan_list_reports":                    {"workspan", true},
	"workspan_read_report_data":                {"workspan", true},
}

// toolMention matches identifiers with a tool prefix.
var toolMention = regexp.MustCompile(`\b(?:partnercenter|pipedrive|workspan|trigger|throttle)_[a-z0-9_]+\b`)

// confirmation is the instruction every write prompt must carry.
var confirmation = regexp.MustCompile(`(?i)confirm`)

func byName(t *testing.T) map[string]Prompt {
	t.Helper()
	all, err := All()
	require.NoError(t, err)
	m := make(map[string]Prompt, len(all))
	for _, p := range all {
		m[p.Name] = p
	}
	return m
}

// fullArgs gives every argument of p a value.
func fullArgs(p Prompt) map[string]string {
	args := map[string]string{}
	for _, a := range p.Arguments {
		args[a.Name] = "VAL_" + a.Name
	}
	return args
}

func TestAllParsesPrompts(t *testing.T) {
	all, err := All()
	require.NoError(t, err)

	type arg struct {
		name     string
		required bool
	}
	want := []struct {
		name     string
		toolsets []string
		writes   bool
		args     []arg
	}{
		{"bulk_import_opportunities", []string{"workspan"}, true, []arg{{"path", true}, {"integration_id", true}}},
		{"link_referral_to_crm", []string{"partnercenter", "pipedrive", "workspan"}, true, []arg{{"referral_id", true}, {"workspan_object_id", false}}},
		{"register_deal", []string{"partnercenter"}, true, []arg{{"referral_id", true}}},
		{"review_pipeline", []string{"pipedrive"}, false, []arg{{"pipeline", true}, {"stale_days", false}}},
		{"triage_referrals", []string{"partnercenter"}, false, []arg{{"since", false}, {"country", false}, {"qualification", false}}},
	}
	require.Len(t, all, len(want))
	for i, w := range want {
		p := all[i]
		assert.Equal(t, w.name, p.Name, "sorted by name")
		assert.Equal(t, w.toolsets, p.Toolsets, p.Name)
		assert.Equal(t, w.writes, p.Writes, p.Name)
		assert.NotEmpty(t, p.Description, p.Name)
		var got []arg
		for _, a := range p.Arguments {
			got = append(got, arg{a.Name, a.Required})
			assert.NotEmpty(t, a.Description, "%s.%s", p.Name, a.Name)
		}
		assert.Equal(t, w.args, got, p.Name)
	}

	// All hands out copies: changing one does not change the next call.
	all[0].Toolsets[0] = "changed"
	all[0].Name = "changed"
	again, err := All()
	require.NoError(t, err)
	assert.Equal(t, "bulk_import_opportunities", again[0].Name)
	assert.Equal(t, "workspan", again[0].Toolsets[0])
}

func TestWritePromptsAskForConfirmation(t *testing.T) {
	for _, p := range byName(t) {
		text, err := p.Render(fullArgs(p))
		require.NoError(t, err, p.Name)
		if p.Writes {
			assert.Regexp(t, confirmation, text, "%s writes, so it must ask the user to confirm", p.Name)
			assert.Contains(t, strings.ToLower(text), "ask the user to confirm", p.Name)
		} else {
			assert.Contains(t, text, "read-only", "%s must say it is read-only", p.Name)
		}
	}
}

func TestMentionedToolsExist(t *testing.T) {
	for _, p := range byName(t) {
		text, err := p.Render(fullArgs(p))
		require.NoError(t, err, p.Name)
		var mentioned []string
		for _, name := range toolMention.FindAllString(text, -1) {
			if slices.ContainsFunc(p.Arguments, func(a Argument) bool { return a.Name == name }) {
				continue // an argument, such as workspan_object_id
			}
			mentioned = append(mentioned, name)
			tool, ok := knownTools[name]
			if !assert.True(t, ok, "%s mentions unknown tool %s", p.Name, name) {
				continue
			}
			assert.Contains(t, p.Toolsets, tool.toolset, "%s uses %s from a toolset it does not declare", p.Name, name)
			if !tool.readOnly {
				assert.True(t, p.Writes, "%s mentions the write tool %s but declares writes: false", p.Name, name)
			}
		}
		assert.NotEmpty(t, mentioned, "%s names no tool", p.Name)
	}
}

// argMention matches an argument given by name in a prompt, `name: value`.
var argMention = regexp.MustCompile("`([a-z][a-z0-9_]*): ")

// inputProperties reads a tool's argument names, and its toolset, from
// its generated schema in schemas/.
func inputProperties(t *testing.T, tool string) (toolset string, props map[string]bool) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "schemas", tool+".json"))
	require.NoError(t, err, "schemas/%s.json", tool)
	var file struct {
		Toolset     string `json:"toolset"`
		InputSchema struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"inputSchema"`
	}
	require.NoError(t, json.Unmarshal(raw, &file), tool)
	props = map[string]bool{}
	for name := range file.InputSchema.Properties {
		props[name] = true
	}
	return file.Toolset, props
}

func TestKnownToolsMatchTheSchemas(t *testing.T) {
	for name, tool := range knownTools {
		toolset, _ := inputProperties(t, name)
		assert.Equal(t, tool.toolset, toolset, name)
	}
}

// Every `name: value` in a prompt is an argument of a tool named on the
// same line (or, on a line that names none, on the last line that did).
func TestArgumentsExistInToolSchemas(t *testing.T) {
	props := map[string]map[string]bool{}
	for _, p := range byName(t) {
		text, err := p.Render(fullArgs(p))
		require.NoError(t, err, p.Name)
		var tools []string
		for i, line := range strings.Split(text, "\n") {
			if named := toolMention.FindAllString(line, -1); len(named) > 0 {
				tools = tools[:0]
				for _, n := range named {
					if _, ok := knownTools[n]; ok {
						tools = append(tools, n)
					}
				}
			}
			for _, m := range argMention.FindAllStringSubmatch(line, -1) {
				arg := m[1]
				if !assert.NotEmpty(t, tools, "%s line %d: `%s:` names no tool's argument", p.Name, i+1, arg) {
					continue
				}
				found := false
				for _, tool := range tools {
					if props[tool] == nil {
						_, props[tool] = inputProperties(t, tool)
					}
					found = found || props[tool][arg]
				}
				assert.True(t, found, "%s line %d: %s is not an argument of %s", p.Name, i+1, arg, strings.Join(tools, " or "))
			}
		}
	}
}

func TestPromptsNameExpectedTools(t *testing.T) {
	want := map[string][]string{
		"triage_referrals":          {"partnercenter_list_referrals", "partnercenter_get_referral", "`fields: ["},
		"register_deal":             {"partnercenter_get_referral", "partnercenter_create_deal_registration", "etag"},
		"review_pipeline":           {"pipedrive_list_pipelines", "pipedrive_list_deals", "stage_change_time", "next_cursor", "next_activity_id", "`fields: ["},
		"bulk_import_opportunities": {"workspan_list_integrations", "workspan_bulk_load_opportunities_file", "workspan_get_bulk_load_status", "wait: true"},
		"link_referral_to_crm": {"pipedrive_search_deals", "pipedrive_update_deal", "pipedrive_add_note", "pipedrive_search_organizations",
			"pipedrive_add_organization", "pipedrive_add_person", "pipedrive_add_deal", "workspan_connect_external_id", "workspan_add_audit", "LINKED"},
	}
	prompts := byName(t)
	for name, words := range want {
		p, ok := prompts[name]
		require.True(t, ok, name)
		text, err := p.Render(fullArgs(p))
		require.NoError(t, err)
		for _, w := range words {
			assert.Contains(t, text, w, name)
		}
	}
	text, err := prompts["triage_referrals"].Render(nil)
	require.NoError(t, err)
	assert.Contains(t, text, "do NOT change anything")
	// Search, then link an existing deal, before creating one; an
	// organization and a person before the deal that names them.
	text, err = prompts["link_referral_to_crm"].Render(map[string]string{"referral_id": "r"})
	require.NoError(t, err)
	inOrder(t, text, "pipedrive_search_deals", "pipedrive_update_deal", "pipedrive_search_organizations",
		"pipedrive_add_organization", "pipedrive_add_person", "pipedrive_add_deal")
	// The columns are known before the upload.
	text, err = prompts["bulk_import_opportunities"].Render(map[string]string{"path": "p", "integration_id": "i"})
	require.NoError(t, err)
	inOrder(t, text, "workspan_list_integrations", "workspan_bulk_load_opportunities_file", "workspan_get_bulk_load_status")
}

// inOrder asserts that each word first appears in text after the one
// before it.
func inOrder(t *testing.T, text string, words ...string) {
	t.Helper()
	at := -1
	for _, w := range words {
		i := strings.Index(text, w)
		if assert.GreaterOrEqual(t, i, 0, "%s is missing", w) {
			assert.Greater(t, i, at, "%s comes too early", w)
			at = i
		}
	}
}

func TestRender(t *testing.T) {
	prompts := byName(t)

	t.Run("optional arguments absent", func(t *testing.T) {
		text, err := prompts["triage_referrals"].Render(nil)
		require.NoError(t, err)
		assert.NotContains(t, text, "country:")
		assert.NotContains(t, text, "created_since")
		assert.NotContains(t, text, "<no value>")

		text, err = prompts["review_pipeline"].Render(map[string]string{"pipeline": "Sales"})
		require.NoError(t, err)
		assert.Contains(t, text, `"Sales"`)
		assert.Contains(t, text, "more than 30 days")
	})

	t.Run("optional arguments given", func(t *testing.T) {
		text, err := prompts["triage_referrals"].Render(map[string]string{"since": "2026-01-01", "country": "GB", "qualification": "SalesQualified"})
		require.NoError(t, err)
		assert.Contains(t, text, `created_since: "2026-01-01"`)
		assert.Contains(t, text, `country: "GB"`)
		assert.Contains(t, text, `qualification: "SalesQualified"`)

		text, err = prompts["review_pipeline"].Render(map[string]string{"pipeline": "7", "stale_days": "14"})
		require.NoError(t, err)
		assert.Contains(t, text, "more than 14 days")
		assert.NotContains(t, text, "30 days")

		text, err = prompts["link_referral_to_crm"].Render(map[string]string{"referral_id": "ref-1", "workspan_object_id": "ws-9"})
		require.NoError(t, err)
		assert.Contains(t, text, "`ws-9`")
		assert.NotContains(t, text, "ask the user for the WorkSpan object id")
	})

	t.Run("missing required argument", func(t *testing.T) {
		_, err := prompts["register_deal"].Render(nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "missing required argument referral_id")

		_, err = prompts["bulk_import_opportunities"].Render(map[string]string{"path": "x.csv", "integration_id": "  "})
		require.Error(t, err, "blank counts as missing")
		assert.Contains(t, err.Error(), "integration_id")
		assert.NotContains(t, err.Error(), "path")
	})

	t.Run("unknown argument", func(t *testing.T) {
		_, err := prompts["review_pipeline"].Render(map[string]string{"pipeline": "Sales", "owner": "me"})
		require.Error(t, err)
		assert.Contains(t, err.Error(), "unknown argument owner")
	})
}

func TestParseRejectsBadFiles(t *testing.T) {
	good := "---\nname: x\ndescription: d\ntoolset: pipedrive\nwrites: false\nargument: a | required | A.\n---\nHello {{.a}}\n"
	p, err := parse(good)
	require.NoError(t, err)
	text, err := p.Render(map[string]string{"a": "world"})
	require.NoError(t, err)
	assert.Equal(t, "Hello world\n", text)

	bad := map[string]string{
		"no front matter":     "name: x\n",
		"unclosed":            "---\nname: x\n",
		"unknown key":         strings.Replace(good, "writes: false", "writes: false\ncolour: red", 1),
		"bad writes":          strings.Replace(good, "writes: false", "writes: maybe", 1),
		"no writes":           strings.Replace(good, "writes: false\n", "", 1),
		"no toolset":          strings.Replace(good, "toolset: pipedrive\n", "", 1),
		"bad name":            strings.Replace(good, "name: x", "name: Bad-Name", 1),
		"bad argument":        strings.Replace(good, "a | required | A.", "a | sometimes | A.", 1),
		"duplicate argument":  strings.Replace(good, "argument: a | required | A.", "argument: a | required | A.\nargument: a | optional | B.", 1),
		"bad template":        strings.Replace(good, "{{.a}}", "{{.a", 1),
		"empty body":          strings.Replace(good, "Hello {{.a}}\n", "", 1),
		"missing description": strings.Replace(good, "description: d\n", "", 1),
	}
	for name, text := range bad {
		_, err := parse(text)
		assert.Error(t, err, name)
	}

	// A body that uses an undeclared argument fails at render time.
	p, err = parse(strings.Replace(good, "{{.a}}", "{{.b}}", 1))
	require.NoError(t, err)
	_, err = p.Render(map[string]string{"a": "1"})
	assert.Error(t, err)

	// The file name must match the declared name.
	_, err = load(fstest.MapFS{"y.md": {Data: []byte(good)}})
	assert.ErrorContains(t, err, "does not match")
	got, err := load(fstest.MapFS{"x.md": {Data: []byte(good)}, "README.md": {Data: []byte("# readme")}})
	require.NoError(t, err)
	assert.Len(t, got, 1)
}

func newClient(t *testing.T, enabled func(string) bool, readOnly bool) *client.Client {
	t.Helper()
	s := server.NewMCPServer("t", "1", server.WithPromptCapabilities(true))
	require.NoError(t, Register(s, enabled, readOnly))
	c, err := client.NewInProcessClient(s)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	require.NoError(t, c.Start(ctx))
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "test", Version: "1"}
	_, err = c.Initialize(ctx, init)
	require.NoError(t, err)
	return c
}

func listNames(t *testing.T, c *client.Client) []string {
	t.Helper()
	res, err := c.ListPrompts(context.Background(), mcp.ListPromptsRequest{})
	require.NoError(t, err)
	var names []string
	for _, p := range res.Prompts {
		names = append(names, p.Name)
	}
	slices.Sort(names)
	return names
}

func only(toolsets ...string) func(string) bool {
	return func(ts string) bool { return slices.Contains(toolsets, ts) }
}

func TestRegister(t *testing.T) {
	all := func(string) bool { return true }

	t.Run("all toolsets", func(t *testing.T) {
		c := newClient(t, all, false)
		res, err := c.ListPrompts(context.Background(), mcp.ListPromptsRequest{})
		require.NoError(t, err)
		require.Len(t, res.Prompts, 5)
		for _, p := range res.Prompts {
			assert.NotEmpty(t, p.Description, p.Name)
			if p.Name == "review_pipeline" {
				require.Len(t, p.Arguments, 2)
				assert.Equal(t, "pipeline", p.Arguments[0].Name)
				assert.True(t, p.Arguments[0].Required)
				assert.NotEmpty(t, p.Arguments[0].Description)
				assert.Equal(t, "stale_days", p.Arguments[1].Name)
				assert.False(t, p.Arguments[1].Required)
			}
		}
	})

	t.Run("only pipedrive", func(t *testing.T) {
		c := newClient(t, only("pipedrive"), false)
		assert.Equal(t, []string{"review_pipeline"}, listNames(t, c))
	})

	t.Run("partnercenter and pipedrive", func(t *testing.T) {
		c := newClient(t, only("partnercenter", "pipedrive"), false)
		assert.Equal(t, []string{"register_deal", "review_pipeline", "triage_referrals"}, listNames(t, c))
	})

	t.Run("read-only", func(t *testing.T) {
		c := newClient(t, all, true)
		assert.Equal(t, []string{"review_pipeline", "triage_referrals"}, listNames(t, c))
	})

	t.Run("nothing enabled", func(t *testing.T) {
		s := server.NewMCPServer("t", "1", server.WithPromptCapabilities(true))
		require.NoError(t, Register(s, only(), false))
		assert.Empty(t, s.ListPrompts())
	})

	t.Run("get renders arguments", func(t *testing.T) {
		c := newClient(t, all, false)
		req := mcp.GetPromptRequest{}
		req.Params.Name = "register_deal"
		req.Params.Arguments = map[string]string{"referral_id": "ref-42"}
		res, err := c.GetPrompt(context.Background(), req)
		require.NoError(t, err)
		require.Len(t, res.Messages, 1)
		assert.Equal(t, mcp.RoleUser, res.Messages[0].Role)
		text, ok := res.Messages[0].Content.(mcp.TextContent)
		require.True(t, ok, "content is %T", res.Messages[0].Content)
		assert.Contains(t, text.Text, `id: "ref-42"`)
		assert.NotEmpty(t, res.Description)
	})

	t.Run("get without required argument", func(t *testing.T) {
		c := newClient(t, all, false)
		req := mcp.GetPromptRequest{}
		req.Params.Name = "register_deal"
		_, err := c.GetPrompt(context.Background(), req)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "referral_id")
	})

	t.Run("get of a prompt not offered", func(t *testing.T) {
		c := newClient(t, all, true)
		req := mcp.GetPromptRequest{}
		req.Params.Name = "register_deal"
		req.Params.Arguments = map[string]string{"referral_id": "ref-42"}
		_, err := c.GetPrompt(context.Background(), req)
		require.Error(t, err)
	})
}
