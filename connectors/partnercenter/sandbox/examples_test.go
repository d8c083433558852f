package sandbox

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// docExample is one request/response example of the Partner Center documentation or of the
// connector definition (testdata/examples/README.md describes the file).
type docExample struct {
	Name    string `json:"name"`
	Source  string `json:"source"`
	Request struct {
		Method  string            `json:"method"`
		Path    string            `json:"path"`
		Headers map[string]string `json:"headers"`
		Body    json.RawMessage   `json:"body"`
	} `json:"request"`
	Expect struct {
		Status  int            `json:"status"`
		Members map[string]any `json:"members"`
		Present []string       `json:"present"`
		Absent  []string       `json:"absent"`
	} `json:"expect"`
}

// TestDocumentedExamples replays every example, in order, and checks the status and the
// members the documentation shows.
func TestDocumentedExamples(t *testing.T) {
	raw, err := os.ReadFile("testdata/examples/examples.json")
	require.NoError(t, err)
	var examples []docExample
	require.NoError(t, json.Unmarshal(raw, &examples))
	require.NotEmpty(t, examples)

	e := newEnv(t, Options{})
	vars := map[string]string{}
	subst := func(s string) string {
		for k, v := range vars {
			s = strings.ReplaceAll(s, "{{"+k+"}}", v)
		}
		return s
	}
	for i, ex := range examples {
		require.NotEmpty(t, ex.Source, "example %d names its source", i)
		t.Run(fmt.Sprintf("%02d %s", i, ex.Name), func(t *testing.T) {
			var headers []string
			for k, v := range ex.Request.Headers {
				headers = append(headers, k, subst(v))
			}
			var body any
			if len(ex.Request.Body) > 0 {
				body = []byte(subst(string(ex.Request.Body)))
			}
			path := subst(ex.Request.Path)
			path = strings.ReplaceAll(path, " ", "%20")
			r := e.call(ex.Request.Method, path, body, headers...)
			require.Equal(t, ex.Expect.Status, r.status, "%s\nsource: %s\nbody: %s", ex.Name, ex.Source, r.raw)
			if ex.Expect.Status == http.StatusNoContent {
				require.Empty(t, r.raw)
			}
			var got any
			if len(r.raw) > 0 {
				require.NoError(t, json.Unmarshal(r.raw, &got))
			}
			if ex.Expect.Members != nil {
				var want any
				buf, err := json.Marshal(ex.Expect.Members)
				require.NoError(t, err)
				require.NoError(t, json.Unmarshal([]byte(subst(string(buf))), &want))
				matchMembers(t, "", want, got)
			}
			doc, _ := got.(map[string]any)
			for _, p := range ex.Expect.Present {
				require.NotNil(t, digAny(doc, p), "%s: member %s is missing in %s", ex.Name, p, r.raw)
			}
			for _, p := range ex.Expect.Absent {
				require.Nil(t, digAny(doc, p), "%s: member %s should be absent in %s", ex.Name, p, r.raw)
			}
			if r.status < 300 {
				if ex.Request.Method == http.MethodPost {
					vars["created.id"], _ = doc["id"].(string)
					vars["created.engagementId"], _ = doc["engagementId"].(string)
				}
				if etag, ok := doc["eTag"].(string); ok && doc["id"] == vars["created.id"] {
					vars["created.eTag"] = etag
				} else if h := r.header.Get("ETag"); h != "" && ex.Request.Method != http.MethodGet {
					vars["created.eTag"] = h
				}
			}
		})
	}
}

// matchMembers checks that got has every member of want: objects member by member, arrays by
// length and position, numbers by value.
func matchMembers(t *testing.T, path string, want, got any) {
	t.Helper()
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		require.True(t, ok, "%s: want an object, got %#v", path, got)
		for k, v := range w {
			gv, ok := g[k]
			require.True(t, ok, "%s/%s is missing", path, k)
			matchMembers(t, path+"/"+k, v, gv)
		}
	case []any:
		g, ok := got.([]any)
		require.True(t, ok, "%s: want an array, got %#v", path, got)
		require.Len(t, g, len(w), "%s", path)
		for i := range w {
			matchMembers(t, fmt.Sprintf("%s/%d", path, i), w[i], g[i])
		}
	default:
		require.Equal(t, want, got, "%s", path)
	}
}

// digAny follows a slash-separated path through objects and arrays.
func digAny(doc map[string]any, path string) any {
	var cur any = doc
	for _, seg := range strings.Split(path, "/") {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[seg]
		case []any:
			var i int
			if _, err := fmt.Sscan(seg, &i); err != nil || i < 0 || i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
	}
	return cur
}
