package workspan_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/cosell-mcp/cosell-mcp/tools"
	wstools "github.com/cosell-mcp/cosell-mcp/tools/workspan"
)

const oppsCSV = "name,stage\nLocal Opp,Qualify\n"

// localUser is a home folder and a project folder outside it, the
// working directory; the home has the usual hidden folders.
type localUser struct {
	home, project, outside string
}

func newLocalUser(t *testing.T) localUser {
	t.Helper()
	base, err := filepath.EvalSymlinks(t.TempDir())
	require.NoError(t, err)
	u := localUser{home: filepath.Join(base, "home", "ann"), project: filepath.Join(base, "srv", "project"), outside: filepath.Join(base, "elsewhere")}
	for _, d := range []string{"Documents", ".ssh", ".aws", ".config/app"} {
		require.NoError(t, os.MkdirAll(filepath.Join(u.home, d), 0o700))
	}
	require.NoError(t, os.MkdirAll(u.project, 0o755))
	require.NoError(t, os.MkdirAll(u.outside, 0o755))
	t.Setenv("HOME", u.home)
	t.Chdir(u.project)
	return u
}

func (u localUser) write(t *testing.T, path, content string) string {
	t.Helper()
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

// On stdio, with no MCP roots from the client and no configured folder, a
// local user's path works: anything under the home folder or the working
// directory — but no hidden file or folder (~/.ssh, ~/.aws, ~/.config,
// .env) and no symlink out of them. Every refusal says which folders are
// allowed and how to pass the content inline, and costs no upstream call.
func TestStdioWithoutRootsReadsHomeAndWorkingDirectory(t *testing.T) {
	u := newLocalUser(t)
	h := newHarnessWith(t, harnessConfig{clientRoots: true, noAllowedDirs: true})

	inHome := u.write(t, filepath.Join(u.home, "Documents", "opps.csv"), oppsCSV)
	u.write(t, filepath.Join(u.project, "opps.csv"), oppsCSV)
	for _, p := range []string{inHome, "opps.csv", filepath.Join(u.project, "opps.csv")} {
		var up wstools.UploadResult
		h.Call("workspan_bulk_load_opportunities_file", map[string]any{"integration_id": integration, "path": p}, &up)
		assert.Equal(t, 1, up.Rows, p)
	}
	uploads := h.sandbox.RequestCount()

	key := u.write(t, filepath.Join(u.home, ".ssh", "id_ed25519"), "-----BEGIN OPENSSH PRIVATE KEY-----")
	creds := u.write(t, filepath.Join(u.home, ".aws", "credentials"), "aws_secret_access_key=abc")
	cfg := u.write(t, filepath.Join(u.home, ".config", "app", "opps.csv"), oppsCSV)
	env := u.write(t, filepath.Join(u.project, ".env"), "TOKEN=abc")
	linkToKey := filepath.Join(u.home, "Documents", "key.csv")
	require.NoError(t, os.Symlink(key, linkToKey))
	secret := u.write(t, filepath.Join(u.outside, "secret.csv"), "TOKEN=abc\n")
	linkOut := filepath.Join(u.home, "Documents", "out.csv")
	require.NoError(t, os.Symlink(secret, linkOut))

	for _, p := range []string{key, creds, cfg, env, linkToKey, ".env"} {
		e := h.CallErr("workspan_bulk_load_opportunities_file", map[string]any{"integration_id": integration, "path": p})
		assert.Equal(t, tools.CodeInvalidArgument, e.Code, p)
		assert.Equal(t, "path", e.Field, p)
		assert.Contains(t, e.Message, "hidden", p)
		assert.Contains(t, e.Message, u.home, p)
		assert.Contains(t, e.Message, "content_base64", p)
		assert.NotContains(t, e.Message, "abc", p)
		assert.NotContains(t, e.Message, "PRIVATE", p)
	}
	for _, p := range []string{secret, linkOut, "/etc/passwd", filepath.Join(u.home, "..", "bob", "opps.csv")} {
		e := h.CallErr("workspan_bulk_load_data_file", map[string]any{"integration_id": integration, "path": p})
		assert.Equal(t, tools.CodeInvalidArgument, e.Code, p)
		assert.Contains(t, e.Message, "outside the allowed directories", p)
		assert.Contains(t, e.Message, "Allowed folders (by default on stdio", p)
		assert.Contains(t, e.Message, u.home+", "+u.project, p)
		assert.Contains(t, e.Message, "content_base64 (with filename), or csv/json text as data to workspan_bulk_load_data", p)
		assert.Contains(t, e.Message, "(Operator: --allowed-dirs", p)
		assert.Less(t, strings.Index(e.Message, "content_base64"), strings.Index(e.Message, "Operator"), "what the caller can do comes first")
		assert.NotContains(t, e.Message, "abc", p)
	}
	e := h.CallErr("workspan_bulk_load_opportunities_file", map[string]any{"integration_id": integration, "path": filepath.Join(u.home, "Documents", "missing.csv")})
	assert.Contains(t, e.Message, "does not exist")
	assert.Contains(t, e.Message, "a relative path starts at "+u.project)
	assert.Equal(t, uploads, h.sandbox.RequestCount(), "no refusal reaches WorkSpan")
}

// Roots the client offers, or configured folders, replace the defaults.
func TestStdioRootsOrAllowedDirsReplaceTheDefaults(t *testing.T) {
	u := newLocalUser(t)
	inHome := u.write(t, filepath.Join(u.home, "Documents", "opps.csv"), oppsCSV)
	inRoot := u.write(t, filepath.Join(u.outside, "opps.csv"), oppsCSV)

	h := newHarnessWith(t, harnessConfig{clientRoots: true, noAllowedDirs: true,
		clientOpts: []client.ClientOption{client.WithRootsHandler(rootsHandler{dir: u.outside})}})
	var up wstools.UploadResult
	h.Call("workspan_bulk_load_opportunities_file", map[string]any{"integration_id": integration, "path": inRoot}, &up)
	e := h.CallErr("workspan_bulk_load_opportunities_file", map[string]any{"integration_id": integration, "path": inHome})
	assert.Contains(t, e.Message, "outside the allowed directories")
	assert.Contains(t, e.Message, "Allowed folders: "+u.outside)

	h = newHarnessWith(t, harnessConfig{clientRoots: true})
	e = h.CallErr("workspan_bulk_load_opportunities_file", map[string]any{"integration_id": integration, "path": inHome})
	assert.Contains(t, e.Message, "Allowed folders: "+h.dir)
}

// Over HTTP a path names a file on the server: with no configured folder
// nothing is read — not the home folder, not the working directory, not
// the folders a client offers as roots — and the refusal says to send the
// content instead.
func TestHTTPReadsNoPathWithoutAllowedDirs(t *testing.T) {
	u := newLocalUser(t)
	inHome := u.write(t, filepath.Join(u.home, "Documents", "opps.csv"), oppsCSV)
	u.write(t, filepath.Join(u.project, "opps.csv"), oppsCSV)
	h := newHarnessWith(t, harnessConfig{noAllowedDirs: true,
		clientOpts: []client.ClientOption{client.WithRootsHandler(rootsHandler{dir: u.home})}})
	for _, p := range []string{inHome, "opps.csv", "/etc/passwd"} {
		e := h.CallErr("workspan_bulk_load_opportunities_file", map[string]any{"integration_id": integration, "path": p})
		assert.Equal(t, tools.CodeInvalidArgument, e.Code, p)
		assert.Equal(t, "path", e.Field, p)
		assert.Contains(t, e.Message, "remote (HTTP) and reads no file paths", p)
		assert.Contains(t, e.Message, "content_base64 (with filename), or csv/json text as data to workspan_bulk_load_opportunities", p)
		assert.Contains(t, e.Message, "(Operator: --allowed-dirs", p)
		assert.NotContains(t, e.Message, u.home, "the server's folders are not shown")
	}
	assert.Zero(t, h.sandbox.RequestCount())
}
