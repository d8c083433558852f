package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
)

// command is a subcommand of mcp-server.
type command struct {
	name    string
	args    string // the synopsis after the name
	summary string // one line in the command list
	detail  string // what mcp-server help NAME adds
	// flags registers the command's flags on a throwaway set, for the
	// help; nil means it takes none.
	flags func(fs *flag.FlagSet)
	// server is set for the commands that take the server's flags and
	// environment.
	server   bool
	examples []string
	run      func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error
}

// helpSummary is the paragraph the help starts with.
const helpSummary = `mcp-server lets an AI assistant work a Microsoft partner's co-sell pipeline in
Pipedrive, Partner Center Referrals and WorkSpan. Each connector action is an MCP
tool with a JSON Schema and each connector trigger an MCP resource; every
connection keeps to a throttle budget of 100 upstream calls per rolling 60 s. A
connector without credentials runs on an embedded sandbox, so everything works
before any account is set up. It speaks MCP over stdio, started by a client such
as Claude Desktop, Claude Code, VS Code, Cursor or Windsurf (the README's
"Configure a client" has their settings), or over streamable HTTP with --http.`

// commands lists the subcommands in the order the help shows them.
func commands() []command {
	return []command{{
		name:    "serve",
		args:    "[flags]",
		summary: "serve MCP over stdio, or streamable HTTP with --http (the default command)",
		detail: `Serves MCP over stdio until stdin closes or a signal arrives; with --http, over
streamable HTTP at /mcp (with /healthz, /readyz and /metrics) until SIGINT or
SIGTERM, letting calls in flight finish. Logs go to stderr; stdout carries the
protocol. Every flag can be set by the environment variable shown beside it.`,
		flags:  func(fs *flag.FlagSet) { bindFlags(fs, new(Config)) },
		server: true,
		examples: []string{
			"mcp-server                                   # stdio, on the sandboxes",
			"mcp-server --toolsets pipedrive --read-only  # Pipedrive's read tools only",
			"mcp-server --http 127.0.0.1:8080             # http://127.0.0.1:8080/mcp, loopback needs no auth",
			"mcp-server --http 0.0.0.0:8080 --api-keys-file keys.txt",
		},
		run: serveCmd,
	}, {
		name:    "tools",
		args:    "[--json]",
		summary: "print the tool registry: name, toolset, connector operation, read-only, deprecated",
		flags:   func(fs *flag.FlagSet) { toolsFlags(fs) },
		examples: []string{
			"mcp-server tools",
			"mcp-server tools --json",
		},
		run: func(_ context.Context, args []string, _ io.Reader, stdout, _ io.Writer) error {
			return toolsCmd(args, stdout)
		},
	}, {
		name:    "call",
		args:    "[flags] TOOL [JSON]",
		summary: "run one tool call in process and print its result; exit status 1 on a tool error",
		detail: `Runs TOOL through the real MCP server in process, with the arguments given as one
JSON object, and prints the result's text (--full: the whole MCP result). It
takes the server's flags and environment, so credentials and --read-only apply.
Exit status 0 on success, 1 on a tool error, 2 on a usage error.`,
		flags: func(fs *flag.FlagSet) {
			bindFlags(fs, new(Config))
			callFlags(fs)
		},
		server: true,
		examples: []string{
			`mcp-server call pipedrive_search_deals '{"term":"Contoso"}'`,
			`mcp-server call pipedrive_get_stage '{"stage_id":2}'`,
			`mcp-server call --read-only partnercenter_list_referrals '{"status":"New","limit":3}'`,
			`mcp-server call --full throttle_status`,
		},
		run: func(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) error {
			return callCmd(ctx, args, stdout, stderr)
		},
	}, {
		name:    "sandbox",
		args:    "[--addr ADDR]",
		summary: "serve the Pipedrive sandbox standalone on loopback and print its URL and token",
		flags:   func(fs *flag.FlagSet) { sandboxFlags(fs) },
		examples: []string{
			"mcp-server sandbox --addr 127.0.0.1:8089",
		},
		run: func(ctx context.Context, args []string, _ io.Reader, stdout, _ io.Writer) error {
			return sandboxCmd(ctx, args, stdout)
		},
	}, {
		name:    "schemas",
		args:    "[--dir DIR]",
		summary: "write every tool's input and output JSON Schemas to DIR/<tool>.json",
		flags:   func(fs *flag.FlagSet) { schemasFlags(fs) },
		examples: []string{
			"mcp-server schemas --dir schemas",
		},
		run: func(_ context.Context, args []string, _ io.Reader, stdout, _ io.Writer) error {
			return schemasCmd(args, stdout)
		},
	}, {
		name:    "docs",
		summary: "regenerate the tool, resource and prompt tables in ./README.md",
		run: func(_ context.Context, args []string, _ io.Reader, _, _ io.Writer) error {
			if len(args) > 0 {
				return fmt.Errorf("unexpected argument %q: usage: mcp-server docs", args[0])
			}
			return docsCmd("README.md")
		},
	}, {
		name:    "hash-key",
		args:    "KEY",
		summary: "print the hash of an API key, as a line of --api-keys-file wants it",
		examples: []string{
			`mcp-server hash-key "$KEY" | sed 's/^/team /' >> keys.txt`,
		},
		run: hashKeyCmd,
	}, {
		name:    "version",
		summary: "print the version (also mcp-server --version)",
		run: func(_ context.Context, args []string, _ io.Reader, stdout, _ io.Writer) error {
			if len(args) > 0 {
				return fmt.Errorf("unexpected argument %q: usage: mcp-server version", args[0])
			}
			printVersion(stdout)
			return nil
		},
	}, {
		name:    "help",
		args:    "[COMMAND]",
		summary: "print this help, or a command's with its flags",
		run: func(_ context.Context, args []string, _ io.Reader, stdout, _ io.Writer) error {
			return helpCmd(args, stdout)
		},
	}}
}

// lookupCommand finds a subcommand by name.
func lookupCommand(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// helpCmd prints the help, or one command's.
func helpCmd(args []string, w io.Writer) error {
	switch len(args) {
	case 0:
		printHelp(w)
		return nil
	case 1:
		c, ok := lookupCommand(args[0])
		if !ok {
			return fmt.Errorf("unknown command %q: mcp-server help lists them", args[0])
		}
		printCommandHelp(w, c)
		return nil
	}
	return fmt.Errorf("usage: mcp-server help [COMMAND]")
}

// helpRequested reports whether args ask for help (-h, -help, --help).
func helpRequested(args []string) bool {
	for _, a := range args {
		switch a {
		case "-h", "-help", "--help":
			return true
		case "--":
			return false
		}
	}
	return false
}

// printHelp prints the summary, the commands, examples and the environment.
func printHelp(w io.Writer) {
	fmt.Fprintf(w, "%s\n\nUsage:\n  mcp-server [COMMAND] [flags] [arguments]\n\nCommands:\n", helpSummary)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range commands() {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	_ = tw.Flush()
	fmt.Fprint(w, `
Examples:
  mcp-server                      serve MCP over stdio on the sandboxes (a client starts it)
  mcp-server tools                list the tools
  mcp-server call pipedrive_search_deals '{"term":"Contoso"}'
                                  call one tool and print its JSON result
  mcp-server call --read-only partnercenter_list_referrals '{"status":"New","limit":3}'
  PIPEDRIVE_API_TOKEN=... mcp-server call pipedrive_list_pipelines
                                  the same against a real Pipedrive account
  mcp-server --http 127.0.0.1:8080
                                  streamable HTTP at http://127.0.0.1:8080/mcp
  mcp-server help serve           every server flag with its variable and default

`)
	printEnvironment(w)
	fmt.Fprint(w, "\nRun 'mcp-server help COMMAND' (or mcp-server COMMAND --help) for a command's flags.\n")
}

// printCommandHelp prints one command's synopsis, flags and examples.
func printCommandHelp(w io.Writer, c command) {
	fmt.Fprintf(w, "Usage: mcp-server %s", c.name)
	if c.args != "" {
		fmt.Fprintf(w, " %s", c.args)
	}
	fmt.Fprintf(w, "\n\n%s.\n", upperFirst(c.summary))
	if c.detail != "" {
		fmt.Fprintf(w, "\n%s\n", c.detail)
	}
	if c.flags != nil {
		fs := newFlagSet(c.name)
		c.flags(fs)
		strictFlags(fs)
		fmt.Fprint(w, "\nFlags:\n")
		printFlags(w, fs)
		if c.server {
			fmt.Fprint(w, "\nBooleans take true/false, 1/0, yes/no or on/off; durations need a unit (90s, 2m, 1h).\n")
		}
	}
	if len(c.examples) > 0 {
		fmt.Fprint(w, "\nExamples:\n")
		for _, e := range c.examples {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
	if c.server {
		fmt.Fprintln(w)
		printEnvironment(w)
	}
}

// printFlags prints each flag with its kind, default, variable and usage.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		line := "  --" + f.Name
		if kind := flagKind(f); kind != "" {
			line += " " + kind
		}
		var notes []string
		switch f.DefValue {
		case "", "false", "0", "0s":
		default:
			notes = append(notes, "default "+f.DefValue)
		}
		if env := flagEnv(f); env != "" {
			notes = append(notes, "env "+env)
		}
		if len(notes) > 0 {
			line += "  (" + strings.Join(notes, ", ") + ")"
		}
		fmt.Fprintln(w, line)
		usage := strings.TrimSpace(envNamePattern.ReplaceAllString(f.Usage, ""))
		for _, l := range wrap(usage, 74) {
			fmt.Fprintf(w, "      %s\n", l)
		}
	})
}

// secretVars are the credentials: read only from the environment, as NAME or
// from the file NAME_FILE names, never from a flag.
var secretVars = []struct{ name, about string }{
	{"PIPEDRIVE_API_TOKEN", "Pipedrive API token; without it Pipedrive runs on its sandbox"},
	{"PARTNERCENTER_ACCESS_TOKEN", "a static bearer token for the Partner Center API"},
	{"PARTNERCENTER_CLIENT_SECRET", "with PARTNERCENTER_CLIENT_ID: the Azure AD app's secret (client credentials)"},
	{"PARTNERCENTER_REFRESH_TOKEN", "with PARTNERCENTER_CLIENT_ID: a refresh token (app + user, as the referrals API requires); without a token or client id Partner Center runs on its sandbox"},
	{"WORKSPAN_APP_USER_SECRET", "with WORKSPAN_APP_USER_ID and WORKSPAN_HOSTNAME: the application user's secret; without the id WorkSpan runs on its sandbox"},
	{"COSELL_STATE_KEY", "32 random bytes, base64 or hex, sealing the callers' own credentials kept with their triggers"},
}

// otherVars are the variables read outside the flags and the credentials.
var otherVars = []struct{ names, about string }{
	{"COSELL_STATE_DIR", "the directory of state.db when --state-db is not set"},
	{"XDG_STATE_HOME, HOME", "otherwise the state directory is $XDG_STATE_HOME/cosell-mcp, or ~/.local/state/cosell-mcp"},
	{"TMPDIR", "where xlsx workbooks are unpacked while they are read"},
	{"OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "an OTLP/HTTP collector (e.g. http://localhost:4318): turns tracing on"},
	{"OTEL_EXPORTER_OTLP_PROTOCOL, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf (the default) or http/json"},
	{"OTEL_SDK_DISABLED, OTEL_TRACES_EXPORTER", "true, or none, keeps tracing off"},
	{"OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES", "the traces' resource (service.name defaults to cosell-mcp)"},
	{"OTEL_EXPORTER_OTLP_*, OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG, OTEL_BSP_*", "read by the OpenTelemetry SDK (headers, timeout, TLS, sampling, batching)"},
}

// printEnvironment lists every environment variable the server reads.
func printEnvironment(w io.Writer) {
	fmt.Fprint(w, "Environment:\n  Credentials, from the environment only; NAME_FILE names a file holding NAME's value:\n")
	for _, s := range secretVars {
		fmt.Fprintf(w, "    %s, %s_FILE\n", s.name, s.name)
		for _, l := range wrap(s.about, 72) {
			fmt.Fprintf(w, "        %s\n", l)
		}
	}
	fmt.Fprint(w, "  Settings, each the default of its flag (the flag on the command line wins):\n")
	fs := newFlagSet("serve")
	bindFlags(fs, new(Config))
	var settings []string
	fs.VisitAll(func(f *flag.Flag) {
		if env := flagEnv(f); env != "" {
			settings = append(settings, env+"\t--"+f.Name)
		}
	})
	slices.Sort(settings)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, s := range settings {
		fmt.Fprintf(tw, "    %s\n", s)
	}
	_ = tw.Flush()
	fmt.Fprint(w, "  Other:\n")
	for _, o := range otherVars {
		fmt.Fprintf(w, "    %s\n", o.names)
		for _, l := range wrap(o.about, 72) {
			fmt.Fprintf(w, "        %s\n", l)
		}
	}
}

// printStdioHint tells a person who started the server in a terminal what
// it is waiting for.
func printStdioHint(w io.Writer) {
	fmt.Fprint(w, `mcp-server speaks MCP over stdio: it is meant to be started by an MCP client
(Claude Desktop, Claude Code, VS Code, Cursor, Windsurf); the README's
"Configure a client" section has their settings.
  Try a tool from a shell:  mcp-server call pipedrive_search_deals '{"term":"Contoso"}'
  List the tools:           mcp-server tools
  Commands and settings:    mcp-server --help
Serving on stdin/stdout now; Ctrl-D or Ctrl-C ends it.
`)
}

// isTerminal reports whether r is a character device such as a terminal.
func isTerminal(r io.Reader) bool {
	f, ok := r.(interface{ Stat() (os.FileInfo, error) })
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// wrap breaks s into lines of at most width runes at spaces.
func wrap(s string, width int) []string {
	var lines []string
	var line strings.Builder
	for _, word := range strings.Fields(s) {
		if line.Len() > 0 && len([]rune(line.String()))+1+len([]rune(word)) > width {
			lines = append(lines, line.String())
			line.Reset()
		}
		if line.Len() > 0 {
			line.WriteByte(' ')
		}
		line.WriteString(word)
	}
	if line.Len() > 0 {
		lines = append(lines, line.String())
	}
	return lines
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
