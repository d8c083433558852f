package tools_test

// Tool-level tests of the security issue: hostile or broken upstreams
// behind each connector's tools, and arguments that once lost precision.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	pc "github.com/cosell-mcp/cosell-mcp/connectors/partnercenter"
	pd "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive"
	ws "github.com/cosell-mcp/cosell-mcp/connectors/workspan"
	"github.com/cosell-mcp/cosell-mcp/internal/httpx"
	"github.com/cosell-mcp/cosell-mcp/internal/throttle"
	"github.com/cosell-mcp/cosell-mcp/tools"
	pctools "github.com/cosell-mcp/cosell-mcp/tools/partnercenter"
	pdtools "github.com/cosell-mcp/cosell-mcp/tools/pipedrive"
	"github.com/cosell-mcp/cosell-mcp/tools/toolstest"
	wstools "github.com/cosell-mcp/cosell-mcp/tools/workspan"
)

// Credentials with characters every encoding changes.
const (
	pdToken      = `pd/tok+en"0123456789=`
	pcToken      = `pc.access/tok+en"abcdef=`
	pcSecret     = `pc client/secret+"42=`
	pcRefresh    = `pc.refresh/tok+en"99=`
	wsSecret     = `ws app/secret+"77=`
	wsTokenIssue = `ws.access/tok+en"xyz=`
)

// forms are the ways an upstream echoing a request writes a credential.
func forms(secret string) map[string]string {
	j, _ := json.Marshal(secret)
	var u strings.Builder
	for _, r := range secret {
		fmt.Fprintf(&u, `\u%04x`, r)
	}
	return map[string]string{
		"plain":        secret,
		"url-encoded":  url.QueryEscape(secret),
		"path-encoded": url.PathEscape(secret),
		"json-escaped": string(j[1 : len(j)-1]),
		"u-escaped":    u.String(),
	}
}

// echoBodies are error bodies that echo secret in one form each, as JSON
// the connector parses and as text it does not.
func echoBodies(secret, jsonTemplate string) map[string]string {
	out := map[string]string{}
	for name, f := range forms(secret) {
		out[name+" in JSON"] = fmt.Sprintf(jsonTemplate, "invalid credential "+jsonSafe(f))
		out[name+" as text"] = "invalid credential " + f + " (echo)"
	}
	return out
}

// jsonSafe writes an already encoded form into a JSON string as an
// upstream would: a plain form is JSON-escaped, escaped forms stay.
func jsonSafe(f string) string {
	if !strings.ContainsAny(f, `"\`) {
		return f
	}
	if strings.Contains(f, `\u`) || strings.Contains(f, `\"`) {
		return f
	}
	j, _ := json.Marshal(f)
	return string(j[1 : len(j)-1])
}

func assertNoSecret(t *testing.T, text string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		for name, f := range forms(s) {
			assert.NotContains(t, text, f, "%s form of a credential in %s", name, text)
		}
	}
}

// scripted is a hostile upstream: handler answers everything.
func scripted(t *testing.T, handler http.HandlerFunc) *httptest.Server {
	ts := httptest.NewServer(handler)
	t.Cleanup(ts.Close)
	return ts
}

func call(t *testing.T, reg *tools.Registry, name string, args string) *mcp.CallToolResult {
	t.Helper()
	c := toolstest.New(t, reg, tools.Policy{}, nil)
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = json.RawMessage(args)
	res, err := c.MCP.CallTool(context.Background(), req)
	require.NoError(t, err)
	return res
}

func pipedriveTools(t *testing.T, ts *httptest.Server) *tools.Registry {
	budgets := throttle.NewRegistry(throttle.Config{})
	client := pd.New(pdToken, pd.WithBaseURL(ts.URL),
		pd.WithHTTPClient(&http.Client{Transport: httpx.Chain(budgets.Budget(pdtools.Toolset), http.DefaultTransport)}))
	reg := tools.NewRegistry()
	reg.Add(pdtools.Tools(pdtools.Static(client))...)
	return reg
}

// issue finding 7: secrets echoed — Pipedrive: an upstream that echoes the
// API token in its 400 body, in any form, gets none of it into the tool
// error.
func TestPipedriveToolErrorsCarryNoToken(t *testing.T) {
	for name, body := range echoBodies(pdToken, `{"success":false,"error":"%s","error_info":"see docs"}`) {
		t.Run(name, func(t *testing.T) {
			ts := scripted(t, func(w http.ResponseWriter, r *http.Request) {
				assert.Equal(t, pdToken, r.Header.Get("x-api-token"))
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, body)
			})
			res := call(t, pipedriveTools(t, ts), "pipedrive_get_deal", `{"deal_id":7}`)
			require.True(t, res.IsError)
			text := toolstest.Text(res)
			assertNoSecret(t, text, pdToken)
			assert.Contains(t, text, "[redacted]")
			assert.Contains(t, text, "invalid_argument")
		})
	}
}

// issue finding 7: secrets echoed — a success reply that carries the token
// (in a title, say) does not get it into a result either.
func TestPipedriveToolResultsCarryNoToken(t *testing.T) {
	ts := scripted(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/v2/deals/") {
			fmt.Fprintf(w, `{"success":true,"data":{"id":7,"title":"leak %s","status":"open","custom_fields":{"abc":"%s"}}}`,
				jsonSafe(url.QueryEscape(pdToken)), jsonSafe(pdToken))
			return
		}
		_, _ = io.WriteString(w, `{"success":true,"data":[]}`)
	})
	res := call(t, pipedriveTools(t, ts), "pipedrive_get_deal", `{"deal_id":7}`)
	require.False(t, res.IsError, toolstest.Text(res))
	assertNoSecret(t, toolstest.Text(res), pdToken)
	raw, err := json.Marshal(res.StructuredContent)
	require.NoError(t, err)
	assertNoSecret(t, string(raw), pdToken)
}

// issue finding 8: integer ids above 2^53 — 9007199254740993 reaches the
// upstream request path exactly (it was fetched as …992), and an id in the
// reply reaches the result exactly.
func TestPipedriveBigIDReachesTheUpstreamExactly(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	ts := scripted(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		if strings.HasPrefix(r.URL.Path, "/api/v2/deals/") {
			id := strings.TrimPrefix(r.URL.Path, "/api/v2/deals/")
			fmt.Fprintf(w, `{"success":true,"data":{"id":%s,"title":"big","status":"open","person_id":9007199254740995}}`, id)
			return
		}
		_, _ = io.WriteString(w, `{"success":true,"data":[]}`)
	})
	res := call(t, pipedriveTools(t, ts), "pipedrive_get_deal", `{"deal_id":9007199254740993}`)
	require.False(t, res.IsError, toolstest.Text(res))
	mu.Lock()
	assert.Contains(t, paths, "/api/v2/deals/9007199254740993")
	assert.NotContains(t, paths, "/api/v2/deals/9007199254740992")
	mu.Unlock()
	assert.Contains(t, toolstest.Text(res), `"id":9007199254740993`)
}

// issue finding 7: secrets echoed — Partner Center: neither the access
// token nor, from the token endpoint, the client secret or the refresh
// token reach a tool error.
func TestPartnerCenterToolErrorsCarryNoSecret(t *testing.T) {
	reg := func(t *testing.T, ts *httptest.Server, source pc.TokenSource) *tools.Registry {
		client := pc.New(source, pc.WithBaseURL(ts.URL+"/v1.0/engagements"))
		r := tools.NewRegistry()
		r.Add(pctools.Tools(pctools.Static(client))...)
		return r
	}
	for name, body := range echoBodies(pcToken, `{"code":400,"description":"%s","data":[],"source":"PartnerFD"}`) {
		t.Run("API "+name, func(t *testing.T) {
			ts := scripted(t, func(w http.ResponseWriter, r *http.Request) {
				assert.Equal(t, "Bearer "+pcToken, r.Header.Get("Authorization"))
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, body)
			})
			res := call(t, reg(t, ts, pc.StaticToken(pcToken)), "partnercenter_get_referral", `{"id":"r-1"}`)
			require.True(t, res.IsError)
			assertNoSecret(t, toolstest.Text(res), pcToken)
			assert.Contains(t, toolstest.Text(res), "[redacted]")
		})
	}
	for name, enc := range map[string]func(string) string{
		"form echo": func(form string) string { return form },
		"json echo": func(form string) string {
			j, _ := json.Marshal(form)
			return string(j[1 : len(j)-1])
		},
	} {
		t.Run("token endpoint "+name, func(t *testing.T) {
			ts := scripted(t, func(w http.ResponseWriter, r *http.Request) {
				form, _ := io.ReadAll(r.Body)
				w.WriteHeader(http.StatusBadRequest)
				// The raw form is percent-encoded; its decoded values are plain.
				vals, _ := url.ParseQuery(string(form))
				fmt.Fprintf(w, `{"error":"invalid_grant","error_description":"bad request %s secret=%s refresh=%s"}`,
					enc(string(form)), jsonSafe(vals.Get("client_secret")), jsonSafe(vals.Get("refresh_token")))
			})
			source := pc.NewOAuthTokenSource(pc.OAuthConfig{TokenURL: ts.URL + "/token", ClientID: "app", ClientSecret: pcSecret, RefreshToken: pcRefresh})
			res := call(t, reg(t, ts, source), "partnercenter_get_referral", `{"id":"r-1"}`)
			require.True(t, res.IsError)
			text := toolstest.Text(res)
			assertNoSecret(t, text, pcSecret, pcRefresh)
			assert.Contains(t, text, "[redacted]")
		})
	}
}

// issue finding 7: secrets echoed — WorkSpan: neither the access token nor
// the application user's secret reach a tool error.
func TestWorkSpanToolErrorsCarryNoSecret(t *testing.T) {
	reg := func(ts *httptest.Server) *tools.Registry {
		client := ws.New(ws.Config{BaseURL: ts.URL, HostName: "app.workspan.com", AppUserID: "user", AppUserSecret: wsSecret})
		r := tools.NewRegistry()
		r.Add(wstools.Tools(client, wstools.Options{})...)
		return r
	}
	for name, body := range echoBodies(wsTokenIssue, `{"message":"%s"}`) {
		t.Run("API "+name, func(t *testing.T) {
			ts := scripted(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/oauth/token" {
					fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3600}`, wsTokenIssue)
					return
				}
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, body)
			})
			res := call(t, reg(ts), "workspan_get_external_id", `{"object_id":"WS-1"}`)
			require.True(t, res.IsError)
			assertNoSecret(t, toolstest.Text(res), wsTokenIssue, wsSecret)
			assert.Contains(t, toolstest.Text(res), "[redacted]")
		})
	}
	t.Run("token endpoint", func(t *testing.T) {
		ts := scripted(t, func(w http.ResponseWriter, r *http.Request) {
			form, _ := io.ReadAll(r.Body)
			vals, _ := url.ParseQuery(string(form))
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, `{"error":"invalid_client","error_description":"rejected %s (%s)"}`, form, jsonSafe(vals.Get("client_secret")))
		})
		res := call(t, reg(ts), "workspan_get_external_id", `{"object_id":"WS-1"}`)
		require.True(t, res.IsError)
		assertNoSecret(t, toolstest.Text(res), wsSecret)
		assert.Contains(t, toolstest.Text(res), "[redacted]")
	})
}

// issue finding 8: the connectors' own refusals are invalid_argument, not
// upstream_error, at the tool level too.
func TestConnectorRefusalsAreInvalidArguments(t *testing.T) {
	err := tools.AsError(fmt.Errorf("tool: %w", fmt.Errorf("%w: a referral id is required", pc.ErrInvalidArgument)))
	assert.Equal(t, tools.CodeInvalidArgument, err.Code)
	_, werr := ws.EnvironmentURL("mars")
	assert.Equal(t, tools.CodeInvalidArgument, tools.AsError(werr).Code)
}
