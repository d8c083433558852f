package tools

import (
	"context"
	"net/url"
	"path/filepath"
	"runtime"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// rootsTimeout bounds the roots/list round trip to the client.
const rootsTimeout = 3 * time.Second

// ClientRoots returns the local folders the client offers as MCP roots
// (file:// URIs), or nil when it offers none or does not support roots.
//
// Roots name folders on the client's machine. Only a server that shares the
// client's machine (stdio) may treat them as its own folders; over HTTP
// they must widen nothing on the server (see DESIGN.md, "Who may touch
// what"), so callers ask for them only when configured for stdio (e.g.
// workspan.Options.ClientRoots). A root naming another host
// (file://host/…) is skipped.
func ClientRoots(ctx context.Context) []string {
	srv := server.ServerFromContext(ctx)
	session := server.ClientSessionFromContext(ctx)
	if srv == nil || session == nil {
		return nil
	}
	if info, ok := session.(server.SessionWithClientInfo); !ok || info.GetClientCapabilities().Roots == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, rootsTimeout)
	defer cancel()
	res, err := srv.RequestRoots(ctx, mcp.ListRootsRequest{})
	if err != nil || res == nil {
		return nil
	}
	var dirs []string
	for _, r := range res.Roots {
		u, err := url.Parse(r.URI)
		if err != nil || u.Scheme != "file" || u.Path == "" || (u.Host != "" && u.Host != "localhost") {
			continue
		}
		p := u.Path
		if runtime.GOOS == "windows" && len(p) > 2 && p[0] == '/' {
			p = p[1:]
		}
		dirs = append(dirs, filepath.Clean(filepath.FromSlash(p)))
	}
	return dirs
}
