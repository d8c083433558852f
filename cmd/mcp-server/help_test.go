package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// moduleRoot is the repository root, seen from this package.
const moduleRoot = "../.."

// helpOf runs mcp-server with args in process and returns what it printed.
func helpOf(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr strings.Builder
	require.NoError(t, run(context.Background(), args, strings.NewReader(""), &stdout, &stderr), "%v", args)
	assert.Empty(t, stderr.String(), "%v", args)
	return stdout.String()
}

// TestHelpForms: every way of asking for help prints it and succeeds,
// without running the command (docs --help leaves README.md alone).
func TestHelpForms(t *testing.T) {
	top := helpOf(t, "--help")
	assert.Equal(t, top, helpOf(t, "-h"))
	assert.Equal(t, top, helpOf(t, "-help"))
	assert.Equal(t, top, helpOf(t, "help"))
	assert.Equal(t, top, helpOf(t, "--read-only", "--help"))
	for _, c := range commands() {
		want := helpOf(t, "help", c.name)
		assert.True(t, strings.HasPrefix(want, "Usage: mcp-server "+c.name), want)
		assert.Equal(t, want, helpOf(t, c.name, "--help"), c.name)
		assert.Equal(t, want, helpOf(t, c.name, "-h"), c.name)
	}
	var stdout strings.Builder
	err := run(context.Background(), []string{"help", "nope"}, strings.NewReader(""), &stdout, io.Discard)
	require.EqualError(t, err, `unknown command "nope": mcp-server help lists them`)
}

// TestHelpExitsZero: the built binary exits 0 on every help form, and 2 on
// an unknown command.
func TestHelpExitsZero(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"help", "call"}, {"serve", "--help"}, {"call", "--help"}, {"tools", "-h"}, {"docs", "--help"}, {"--version"}, {"version"}} {
		cmd := exec.Command(binary(t), args...)
		cmd.Env = sandboxEnv()
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		require.NoError(t, err, "%v: %s", args, stderr.String())
		assert.NotEmpty(t, out, "%v", args)
		assert.Empty(t, stderr.String(), "%v", args)
	}
	err := exec.Command(binary(t), "frobnicate").Run()
	var exit *exec.ExitError
	require.True(t, errors.As(err, &exit))
	assert.Equal(t, 2, exit.ExitCode())
}

// TestHelpContents: the summary, one line per command, examples with a
// real tool call, and each command's flags with their variables.
func TestHelpContents(t *testing.T) {
	top := helpOf(t, "--help")
	assert.True(t, strings.HasPrefix(top, "mcp-server lets an AI assistant work a Microsoft partner's co-sell pipeline"))
	for _, name := range []string{"serve", "tools", "call", "sandbox", "schemas", "docs", "hash-key", "version", "help"} {
		c, ok := lookupCommand(name)
		require.True(t, ok, name)
		assert.Regexp(t, `(?m)^  `+regexp.QuoteMeta(name)+` +`+regexp.QuoteMeta(c.summary)+`$`, top)
	}
	assert.Contains(t, top, `mcp-server call pipedrive_search_deals '{"term":"Contoso"}'`)

	serve := helpOf(t, "help", "serve")
	fs := newFlagSet("serve")
	bindFlags(fs, new(Config))
	fs.VisitAll(func(f *flag.Flag) {
		assert.Regexp(t, `(?m)^  --`+regexp.QuoteMeta(f.Name)+`\b.*env `+flagEnv(f)+`\)$`, serve)
	})
	assert.Contains(t, serve, "--budget-window duration  (default 1m0s, env COSELL_BUDGET_WINDOW)")
	assert.Contains(t, helpOf(t, "help", "call"), "--full")
}

// TestHelpExamplesRun runs every tool call the help shows, on the
// sandboxes.
func TestHelpExamplesRun(t *testing.T) {
	t.Setenv("COSELL_STATE_DIR", t.TempDir())
	calls := regexp.MustCompile(`(?m)^ *mcp-server (call .*?)(?:[ \t]{2,}.*)?$`)
	seen := map[string]bool{}
	for _, text := range []string{helpOf(t, "--help"), helpOf(t, "help", "call")} {
		for _, m := range calls.FindAllStringSubmatch(text, -1) {
			if seen[m[1]] {
				continue
			}
			seen[m[1]] = true
			args := shellWords(t, m[1])
			t.Run(m[1], func(t *testing.T) {
				var stdout, stderr strings.Builder
				require.NoError(t, run(context.Background(), args, strings.NewReader(""), &stdout, &stderr), stderr.String())
				assert.NotContains(t, stdout.String(), `"error"`)
			})
		}
	}
	assert.GreaterOrEqual(t, len(seen), 4)
}

// TestStdioHint: started in a terminal, the server says what it is for on
// stderr and serves all the same; started by a client, it says nothing.
func TestStdioHint(t *testing.T) {
	t.Setenv("COSELL_STATE_DIR", t.TempDir())
	var stdout, stderr strings.Builder
	require.NoError(t, run(context.Background(), nil, terminal{strings.NewReader("")}, &stdout, &stderr))
	assert.Contains(t, stderr.String(), "mcp-server speaks MCP over stdio: it is meant to be started by an MCP client")
	assert.Contains(t, stderr.String(), `"Configure a client"`)
	assert.Contains(t, stderr.String(), `mcp-server call pipedrive_search_deals '{"term":"Contoso"}'`)
	assert.Contains(t, stderr.String(), "mcp-server --help")
	assert.Contains(t, stderr.String(), "serving MCP over stdio", "it serves after the hint")
	assert.Empty(t, stdout.String(), "stdout carries only the protocol")

	stderr.Reset()
	require.NoError(t, run(context.Background(), nil, strings.NewReader(""), &stdout, &stderr))
	assert.NotContains(t, stderr.String(), "meant to be started")
}

// terminal is a stdin that reports itself a character device.
type terminal struct{ io.Reader }

func (terminal) Stat() (os.FileInfo, error) { return terminalInfo{}, nil }

type terminalInfo struct{ os.FileInfo }

func (terminalInfo) Mode() os.FileMode { return os.ModeDevice | os.ModeCharDevice | 0o620 }

// envName is an environment variable of the server's, by its prefix.
var envName = regexp.MustCompile(`\b(?:COSELL|PIPEDRIVE|PARTNERCENTER|WORKSPAN|OTEL|XDG)_[A-Z0-9_]*[A-Z0-9]\b`)

// sourceVariables scans the module's Go sources (tests and test-helper
// packages aside) for environment variables: every string literal naming
// one by its prefix, and every literal or constant os.Getenv and
// os.LookupEnv are called with.
func sourceVariables(t *testing.T) []string {
	t.Helper()
	found := map[string]string{} // name → where
	byDir := map[string][]*ast.File{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(moduleRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != moduleRoot && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		if strings.HasSuffix(f.Name.Name, "test") { // test helpers such as pgtest
			return nil
		}
		byDir[filepath.Dir(path)] = append(byDir[filepath.Dir(path)], f)
		return nil
	})
	require.NoError(t, err)
	for _, files := range byDir {
		consts := map[string]string{}
		for _, f := range files {
			ast.Inspect(f, func(n ast.Node) bool {
				if vs, ok := n.(*ast.ValueSpec); ok {
					for i, name := range vs.Names {
						if i < len(vs.Values) {
							if s, ok := stringLit(vs.Values[i]); ok {
								consts[name.Name] = s
							}
						}
					}
				}
				return true
			})
		}
		for _, f := range files {
			ast.Inspect(f, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.BasicLit:
					if s, ok := stringLit(n); ok {
						for _, name := range envName.FindAllString(s, -1) {
							found[name] = fset.Position(n.Pos()).String()
						}
					}
				case *ast.CallExpr:
					sel, ok := n.Fun.(*ast.SelectorExpr)
					if !ok || len(n.Args) == 0 {
						break
					}
					if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "os" || (sel.Sel.Name != "Getenv" && sel.Sel.Name != "LookupEnv") {
						break
					}
					if s, ok := stringLit(n.Args[0]); ok {
						found[s] = fset.Position(n.Pos()).String()
					} else if id, ok := n.Args[0].(*ast.Ident); ok && consts[id.Name] != "" {
						found[consts[id.Name]] = fset.Position(n.Pos()).String()
					}
				}
				return true
			})
		}
	}
	names := make([]string, 0, len(found))
	for name := range found {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// helpCovers reports whether the help names the variable, by its name or
// by a NAME_* pattern.
func helpCovers(help, name string) bool {
	if regexp.MustCompile(`(^|[^A-Z0-9_])` + name + `([^A-Z0-9_*]|$)`).MatchString(help) {
		return true
	}
	for _, m := range regexp.MustCompile(`\b([A-Z][A-Z0-9_]*_)\*`).FindAllStringSubmatch(help, -1) {
		if strings.HasPrefix(name, m[1]) {
			return true
		}
	}
	return false
}

// TestHelpNamesEveryVariable fails when the code reads an environment
// variable the help does not name, secrets and their NAME_FILE forms
// included.
func TestHelpNamesEveryVariable(t *testing.T) {
	help := helpOf(t, "--help")
	names := sourceVariables(t)
	for _, must := range []string{"COSELL_READ_ONLY", "PIPEDRIVE_API_TOKEN", "COSELL_STATE_DIR", "XDG_STATE_HOME", "OTEL_EXPORTER_OTLP_ENDPOINT"} {
		require.Contains(t, names, must, "the source scan finds the variables")
	}
	for _, name := range names {
		assert.True(t, helpCovers(help, name), "the code reads %s but mcp-server --help does not name it", name)
	}
	// A secret read as NAME or NAME_FILE: probe each variable with a
	// NAME_FILE that does not exist and see whether the server reads it.
	for _, name := range names {
		t.Setenv(name, "")
	}
	t.Setenv("COSELL_STATE_DIR", t.TempDir())
	missing := filepath.Join(t.TempDir(), "missing")
	secrets := 0
	for _, name := range names {
		if strings.HasSuffix(name, "_FILE") {
			continue
		}
		t.Setenv(name+"_FILE", missing)
		_, _, err := parseConfig("test", nil, io.Discard, nil)
		t.Setenv(name+"_FILE", "")
		if err != nil && strings.Contains(err.Error(), name+"_FILE") {
			secrets++
			assert.True(t, helpCovers(help, name+"_FILE"), "the server reads %s_FILE but the help does not name it", name)
		}
	}
	assert.GreaterOrEqual(t, secrets, len(secretVars), "every secret has a NAME_FILE form")
}

// knownVariables is every environment variable the server reads.
func knownVariables(t *testing.T) map[string]bool {
	known := map[string]bool{}
	for _, name := range sourceVariables(t) {
		known[name] = true
	}
	for _, s := range secretVars {
		known[s.name+"_FILE"] = true
	}
	return known
}

// clientSnippet is one client's settings in the README.
type clientSnippet struct {
	where string
	env   map[string]string
}

// readmeClientSnippets finds the MCP client settings in the README: JSON
// blocks with "mcpServers" or "servers", claude mcp add commands and
// vscode:mcp/install links.
func readmeClientSnippets(t *testing.T, readme string) []clientSnippet {
	t.Helper()
	var snippets []clientSnippet
	for _, b := range regexp.MustCompile("(?s)```json\n(.*?)```").FindAllStringSubmatchIndex(readme, -1) {
		body := readme[b[2]:b[3]]
		// The paragraph before a block says which client it is for.
		before := strings.TrimSpace(readme[:b[0]])
		intro, _, _ := strings.Cut(strings.TrimSpace(before[strings.LastIndex(before, "\n\n")+1:]), "\n")
		if r := []rune(intro); len(r) > 60 {
			intro = string(r[:60]) + "…"
		}
		var doc struct {
			MCPServers map[string]struct {
				Env map[string]string `json:"env"`
			} `json:"mcpServers"`
			Servers map[string]struct {
				Env map[string]string `json:"env"`
			} `json:"servers"`
		}
		if err := json.Unmarshal([]byte(body), &doc); err != nil {
			continue // not a client's settings (an example result)
		}
		for name, s := range doc.MCPServers {
			snippets = append(snippets, clientSnippet{"mcpServers." + name + ": " + intro, s.Env})
		}
		for name, s := range doc.Servers {
			snippets = append(snippets, clientSnippet{"servers." + name + ": " + intro, s.Env})
		}
	}
	joined := strings.ReplaceAll(readme, "\\\n", " ")
	for _, line := range regexp.MustCompile(`(?m)^\s*claude mcp add .*$`).FindAllString(joined, -1) {
		env := map[string]string{}
		words := shellWords(t, line)
		for i := 0; i < len(words)-1; i++ {
			if words[i] == "-e" || words[i] == "--env" {
				k, v, ok := strings.Cut(words[i+1], "=")
				require.True(t, ok, "%s: %s is not NAME=value", line, words[i+1])
				env[k] = v
			}
			if words[i] == "--" {
				break
			}
		}
		snippets = append(snippets, clientSnippet{"claude mcp add", env})
	}
	for _, m := range regexp.MustCompile(`vscode:mcp/install\?([^)\s"'`+"`"+`]+)`).FindAllStringSubmatch(readme, -1) {
		raw, err := url.QueryUnescape(m[1])
		require.NoError(t, err, m[0])
		var link struct {
			Name    string            `json:"name"`
			Command string            `json:"command"`
			Env     map[string]string `json:"env"`
		}
		require.NoError(t, json.Unmarshal([]byte(raw), &link), "the VS Code install link carries JSON: %s", raw)
		require.NotEmpty(t, link.Name)
		require.NotEmpty(t, link.Command)
		snippets = append(snippets, clientSnippet{"vscode:mcp/install link", link.Env})
	}
	return snippets
}

// shellWords splits a command line as a POSIX shell would, for the simple
// quoting the README and the help use.
func shellWords(t *testing.T, line string) []string {
	var words []string
	var word strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			require.GreaterOrEqual(t, j, 0, "unterminated quote in %s", line)
			word.WriteString(line[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			j := strings.IndexByte(line[i+1:], '"')
			require.GreaterOrEqual(t, j, 0, "unterminated quote in %s", line)
			word.WriteString(line[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, word.String())
				word.Reset()
				inWord = false
			}
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, word.String())
	}
	return words
}

// configuredWith parses the server's configuration with exactly env set
// among the variables it reads.
func configuredWith(t *testing.T, known map[string]bool, env map[string]string) (Config, error) {
	t.Helper()
	for name := range known {
		t.Setenv(name, "")
	}
	t.Setenv("COSELL_STATE_DIR", t.TempDir())
	for k, v := range env {
		t.Setenv(k, v)
	}
	cfg, _, err := parseConfig("test", nil, io.Discard, nil)
	return cfg, err
}

// TestReadmeClientSnippets: every client's settings in the README names
// only variables the server reads, and sets all three connectors'
// credentials (the server starts with none of them on its sandbox).
func TestReadmeClientSnippets(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(moduleRoot, "README.md"))
	require.NoError(t, err)
	known := knownVariables(t)
	snippets := readmeClientSnippets(t, string(raw))
	var kinds []string
	for _, s := range snippets {
		kinds = append(kinds, s.where)
		t.Run(s.where, func(t *testing.T) {
			for name := range s.env {
				assert.True(t, known[name], "%s is not an environment variable the server reads", name)
			}
			cfg, err := configuredWith(t, known, s.env)
			require.NoError(t, err, "the server refuses these settings")
			assert.False(t, cfg.Sandbox, "Pipedrive credentials missing: PIPEDRIVE_API_TOKEN")
			assert.False(t, cfg.PartnerCenter.Sandbox, "Partner Center credentials missing: PARTNERCENTER_CLIENT_ID with PARTNERCENTER_REFRESH_TOKEN or _CLIENT_SECRET, or PARTNERCENTER_ACCESS_TOKEN")
			assert.False(t, cfg.WorkSpan.Sandbox, "WorkSpan credentials missing: WORKSPAN_APP_USER_ID, WORKSPAN_APP_USER_SECRET, WORKSPAN_HOSTNAME")
		})
	}
	joined := strings.Join(kinds, "\n")
	for _, want := range []string{"claude_desktop_config.json", "claude mcp add", "vscode:mcp/install link", "servers.", ".cursor/mcp.json", "mcp_config.json"} {
		assert.Contains(t, joined, want, "the README has no snippet for %s", want)
	}
}

// mcpbManifest is the parts of the bundle manifest the tests read.
type mcpbManifest struct {
	ManifestVersion string `json:"manifest_version"`
	Name            string `json:"name"`
	Version         string `json:"version"`
	Description     string `json:"description"`
	Author          struct {
		Name string `json:"name"`
	} `json:"author"`
	Server struct {
		Type       string `json:"type"`
		EntryPoint string `json:"entry_point"`
		MCPConfig  struct {
			Command string            `json:"command"`
			Args    []string          `json:"args"`
			Env     map[string]string `json:"env"`
		} `json:"mcp_config"`
	} `json:"server"`
	Compatibility struct {
		Platforms []string `json:"platforms"`
	} `json:"compatibility"`
	UserConfig map[string]struct {
		Type        string `json:"type"`
		Title       string `json:"title"`
		Description string `json:"description"`
		Required    bool   `json:"required"`
		Default     any    `json:"default"`
		Sensitive   bool   `json:"sensitive"`
		Multiple    bool   `json:"multiple"`
	} `json:"user_config"`
}

// renderManifest fills the template's placeholders as make mcpb does.
func renderManifest(t *testing.T, version, platform, exe string) (mcpbManifest, map[string]any) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(moduleRoot, "packaging", "mcpb", "manifest.json"))
	require.NoError(t, err)
	s := strings.NewReplacer("@VERSION@", version, "@PLATFORM@", platform, "@EXE@", exe).Replace(string(raw))
	require.NotContains(t, s, "@", "a placeholder make mcpb does not fill")
	var m mcpbManifest
	require.NoError(t, json.Unmarshal([]byte(s), &m))
	var loose map[string]any
	require.NoError(t, json.Unmarshal([]byte(s), &loose))
	return m, loose
}

// TestMCPBManifest checks the Claude Desktop bundle's manifest against the
// MCPB manifest specification (version 0.3): its required fields, the
// fields it allows, a binary server, and user_config entries mapped to
// the environment variables the server reads, credentials sensitive.
func TestMCPBManifest(t *testing.T) {
	known := knownVariables(t)
	for _, p := range []struct{ platform, exe string }{{"darwin", ""}, {"linux", ""}, {"win32", ".exe"}} {
		m, loose := renderManifest(t, "1.2.3", p.platform, p.exe)
		allowed := []string{"$schema", "manifest_version", "name", "display_name", "version", "description", "long_description",
			"author", "repository", "homepage", "documentation", "support", "icon", "icons", "screenshots", "localization", "server",
			"tools", "tools_generated", "prompts", "prompts_generated", "keywords", "license", "privacy_policies", "compatibility", "user_config", "_meta"}
		for k := range loose {
			assert.Contains(t, allowed, k, "manifest field %s is not in the MCPB 0.3 schema", k)
		}
		assert.Equal(t, "0.3", m.ManifestVersion)
		assert.NotEmpty(t, m.Name)
		assert.Equal(t, "1.2.3", m.Version)
		assert.NotEmpty(t, m.Description)
		assert.NotEmpty(t, m.Author.Name)
		assert.Equal(t, "binary", m.Server.Type)
		assert.Equal(t, "server/mcp-server"+p.exe, m.Server.EntryPoint)
		assert.Equal(t, "${__dirname}/"+m.Server.EntryPoint, m.Server.MCPConfig.Command)
		assert.Equal(t, []string{p.platform}, m.Compatibility.Platforms)
	}

	m, _ := renderManifest(t, "1.2.3", "darwin", "")
	ref := regexp.MustCompile(`^\$\{user_config\.([a-z_]+)\}$`)
	used := map[string]string{} // user_config key → variable
	for name, v := range m.Server.MCPConfig.Env {
		assert.True(t, known[name], "the manifest sets %s, which the server does not read", name)
		sub := ref.FindStringSubmatch(v)
		require.NotNil(t, sub, "%s=%s: want ${user_config.KEY}", name, v)
		used[sub[1]] = name
	}
	for key, opt := range m.UserConfig {
		assert.Contains(t, []string{"string", "number", "boolean", "directory", "file"}, opt.Type, key)
		assert.NotEmpty(t, opt.Title, key)
		assert.NotEmpty(t, opt.Description, key)
		assert.NotEmpty(t, used[key], "user_config %s is not passed to the server", key)
		assert.False(t, opt.Multiple, "%s: a list cannot fill one environment variable", key)
		// Claude Desktop leaves ${user_config.KEY} as it is when the
		// option has no value: every optional one needs a default.
		assert.True(t, opt.Required || opt.Default != nil, "%s has neither required nor a default", key)
		secret := slices.ContainsFunc(secretVars, func(s struct{ name, about string }) bool { return s.name == used[key] })
		assert.Equal(t, secret, opt.Sensitive, "%s (%s): credentials and only they are sensitive", key, used[key])
		if opt.Sensitive {
			assert.Equal(t, "string", opt.Type, key)
		}
	}
	for key := range used {
		assert.Contains(t, m.UserConfig, key, "env refers to an undeclared user_config %s", key)
	}

	// As Claude Desktop builds the environment: defaults, then what the
	// user entered, each substituted as a string.
	environment := func(entered map[string]string) map[string]string {
		env := map[string]string{}
		for name, v := range m.Server.MCPConfig.Env {
			key := ref.FindStringSubmatch(v)[1]
			val, ok := entered[key]
			if !ok {
				switch d := m.UserConfig[key].Default.(type) {
				case bool:
					val = strconv.FormatBool(d)
				case string:
					val = d
				default:
					t.Fatalf("%s: default %v", key, d)
				}
			}
			env[name] = val
		}
		return env
	}
	cfg, err := configuredWith(t, known, environment(nil))
	require.NoError(t, err, "installed and left empty, the extension starts")
	assert.True(t, cfg.Sandbox && cfg.PartnerCenter.Sandbox && cfg.WorkSpan.Sandbox, "on the sandboxes")
	assert.False(t, cfg.ReadOnly)

	cfg, err = configuredWith(t, known, environment(map[string]string{
		"pipedrive_api_token":         "token",
		"partnercenter_client_id":     "00000000-0000-0000-0000-000000000001",
		"partnercenter_tenant_id":     "contoso.onmicrosoft.com",
		"partnercenter_refresh_token": "refresh",
		"workspan_app_user_id":        "app-user",
		"workspan_app_user_secret":    "secret",
		"workspan_hostname":           "app.workspan.com",
		"read_only":                   "true",
	}))
	require.NoError(t, err)
	assert.False(t, cfg.Sandbox || cfg.PartnerCenter.Sandbox || cfg.WorkSpan.Sandbox, "filled in, every connector is live")
	assert.True(t, cfg.ReadOnly)
}

// TestFirstSentence: the README tables take a description's first
// sentence, and an abbreviation such as e.g. does not end it.
func TestFirstSentence(t *testing.T) {
	for in, want := range map[string]string{
		"Find deals by title, custom field value (e.g. a referral id) or organization name. If truncated, raise limit.": "Find deals by title, custom field value (e.g. a referral id) or organization name.",
		"Link a WorkSpan object to a CRM id, e.g. a Pipedrive deal id.":                                                 "Link a WorkSpan object to a CRM id, e.g. a Pipedrive deal id.",
		"Read rows, i.e. the data. Then page.":                                                                          "Read rows, i.e. the data.",
		"List WorkSpan reports.":                                                                                        "List WorkSpan reports.",
		"No period":                                                                                                     "No period",
	} {
		assert.Equal(t, want, firstSentence(in))
	}
	for _, tool := range staticRegistry().Tools() {
		assert.False(t, strings.HasSuffix(firstSentence(tool.Description), "e.g."), "%s: the table cuts its description at e.g.", tool.Name)
	}
}
