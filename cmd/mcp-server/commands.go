package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	pdsandbox "github.com/cosell-mcp/cosell-mcp/connectors/pipedrive/sandbox"
	"github.com/cosell-mcp/cosell-mcp/tools"
)

// serveCmd serves MCP over stdio until stdin closes or a signal arrives.
func serveCmd(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	cfg, fs, err := parseConfig("serve", args, stderr, nil)
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: flags go after the subcommand, e.g. mcp-server call --read-only TOOL JSON", fs.Arg(0))
	}
	log := newLogger(cfg, stderr)
	app, err := newApp(cfg, log)
	if err != nil {
		return err
	}
	defer app.Close()
	if cfg.HTTPAddr != "" {
		hc, err := httpAuth(cfg)
		if err != nil {
			return err
		}
		var metricsHandler http.Handler = app.Metrics.Handler()
		if hc.Auth != nil && cfg.MetricsAuth {
			metricsHandler = hc.Auth(metricsHandler)
		}
		hc.Extra["GET /metrics"] = metricsHandler
		return serveHTTP(ctx, app, hc, log)
	}
	if isTerminal(stdin) {
		printStdioHint(stderr)
	}
	log.Info("serving MCP over stdio", "version", version, "tools", len(app.Registry.Tools()), "read_only", cfg.ReadOnly)
	stdio := server.NewStdioServer(app.Server)
	stdio.SetErrorLogger(newStdLogger(log))
	if err := stdio.Listen(ctx, stdin, stdout); err != nil && ctx.Err() == nil && err != io.EOF {
		return err
	}
	return nil
}

// toolsFlags registers the flags of mcp-server tools.
func toolsFlags(fs *flag.FlagSet) (asJSON *bool) {
	return fs.Bool("json", false, "print JSON: one object per tool, with its title")
}

// toolsCmd prints the registry: name, toolset, operation, read-only, deprecated.
func toolsCmd(args []string, stdout io.Writer) error {
	fs := newFlagSet("tools")
	asJSON := toolsFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: usage: mcp-server tools [--json]", fs.Arg(0))
	}
	type row struct {
		Name       string `json:"name"`
		Toolset    string `json:"toolset"`
		Operation  string `json:"operation"`
		ReadOnly   bool   `json:"read_only"`
		Deprecated bool   `json:"deprecated"`
		Title      string `json:"title"`
	}
	var rows []row
	for _, t := range staticRegistry().Tools() {
		rows = append(rows, row{t.Name, t.Toolset, t.Operation, t.ReadOnly, t.Deprecated, t.Title})
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTOOLSET\tOPERATION\tREAD-ONLY\tDEPRECATED")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%v\n", r.Name, r.Toolset, r.Operation, r.ReadOnly, r.Deprecated)
	}
	return tw.Flush()
}

// callFlags registers the flags mcp-server call adds to the server's.
func callFlags(fs *flag.FlagSet) (full *bool) {
	return fs.Bool("full", false, "print the whole MCP result (with _meta) instead of the text")
}

// callCmd runs one tool call through the real MCP server in process and
// prints the result text; a tool error exits non-zero.
func callCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var full *bool
	cfg, fs, err := parseConfig("call", args, stderr, func(fs *flag.FlagSet) { full = callFlags(fs) })
	if err != nil {
		return err
	}
	rest := fs.Args()
	if len(rest) < 1 || len(rest) > 2 {
		return fmt.Errorf("usage: mcp-server call [flags] TOOL ['{\"arg\":…}']")
	}
	var arguments map[string]any
	if len(rest) == 2 && strings.TrimSpace(rest[1]) != "" {
		dec := json.NewDecoder(strings.NewReader(rest[1]))
		dec.UseNumber() // ids above 2^53 stay exact
		if err := dec.Decode(&arguments); err != nil {
			return fmt.Errorf("arguments must be a JSON object: %w", err)
		}
	}
	app, err := newApp(cfg, newLogger(cfg, stderr))
	if err != nil {
		return err
	}
	defer app.Close()
	c, err := client.NewInProcessClient(app.Server)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Start(ctx); err != nil {
		return err
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "mcp-server call", Version: version}
	if _, err := c.Initialize(ctx, init); err != nil {
		return err
	}
	req := mcp.CallToolRequest{}
	req.Params.Name = rest[0]
	req.Params.Arguments = arguments
	res, err := c.CallTool(ctx, req)
	if err != nil {
		return err
	}
	if *full {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		for _, content := range res.Content {
			if tc, ok := content.(mcp.TextContent); ok {
				fmt.Fprintln(stdout, tc.Text)
			}
		}
	}
	if res.IsError {
		return errToolFailed
	}
	return nil
}

// sandboxFlags registers the flags of mcp-server sandbox.
func sandboxFlags(fs *flag.FlagSet) (addr *string) {
	return fs.String("addr", "127.0.0.1:0", "listen address (loopback; port 0 picks a free one)")
}

// sandboxCmd serves the Pipedrive sandbox standalone on loopback.
func sandboxCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlagSet("sandbox")
	addr := sandboxFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: usage: mcp-server sandbox [--addr ADDR]", fs.Arg(0))
	}
	base, srv, err := pdsandbox.Listen(*addr, pdsandbox.Options{})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "pipedrive sandbox: %s (x-api-token: %s)\n", base, pdsandbox.DefaultToken)
	fmt.Fprintf(stdout, "use it: PIPEDRIVE_BASE_URL=%s PIPEDRIVE_API_TOKEN=%s mcp-server\n", base, pdsandbox.DefaultToken)
	<-ctx.Done()
	if err := srv.Close(); err != nil && err != http.ErrServerClosed {
		return err
	}
	return nil
}

// schemasFlags registers the flags of mcp-server schemas.
func schemasFlags(fs *flag.FlagSet) (dir *string) {
	return fs.String("dir", "schemas", "output directory")
}

// schemasCmd writes schemas/<tool>.json for every tool.
func schemasCmd(args []string, stdout io.Writer) error {
	fs := newFlagSet("schemas")
	dir := schemasFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: usage: mcp-server schemas [--dir DIR]", fs.Arg(0))
	}
	reg := staticRegistry()
	if err := tools.WriteSchemas(reg, *dir); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %d schemas to %s\n", len(reg.Tools()), *dir)
	return nil
}
