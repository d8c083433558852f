// Command mcp-server exposes the Pipedrive, Partner Center Referrals and
// WorkSpan connectors as MCP tools over stdio.
//
// Usage:
//
//	mcp-server [flags]                 serve MCP over stdio
//	mcp-server tools [--json]          print the tool registry
//	mcp-server call TOOL [JSON]        run one tool call and print its result
//	mcp-server sandbox [--addr ADDR]   serve the Pipedrive sandbox on loopback
//	mcp-server schemas [--dir DIR]     write every tool's JSON Schemas
//	mcp-server docs                    regenerate the tool and resource tables in README.md
//	mcp-server hash-key KEY            print the hash to put in --api-keys-file
//	mcp-server version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/cosell-mcp/cosell-mcp/internal/httpauth"
)

// errToolFailed marks a tool call that returned a tool error (exit status 1).
var errToolFailed = errors.New("tool call failed")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, errToolFailed):
		os.Exit(1)
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "mcp-server:", err)
		os.Exit(2)
	}
}

// run dispatches a subcommand; it is main without the process exit.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := ""
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "", "serve":
		return serveCmd(ctx, args, stdin, stdout, stderr)
	case "tools":
		return toolsCmd(args, stdout, stderr)
	case "call":
		return callCmd(ctx, args, stdout, stderr)
	case "sandbox":
		return sandboxCmd(ctx, args, stdout, stderr)
	case "schemas":
		return schemasCmd(args, stdout, stderr)
	case "docs":
		return docsCmd("README.md")
	case "hash-key":
		if len(args) != 1 {
			return fmt.Errorf("usage: mcp-server hash-key KEY")
		}
		fmt.Fprintln(stdout, httpauth.HashKey(args[0]))
		return nil
	case "version":
		fmt.Fprintln(stdout, "mcp-server", version)
		return nil
	default:
		return fmt.Errorf("unknown command %q (commands: serve, tools, call, sandbox, schemas, version)", cmd)
	}
}

// parseConfig parses the server flags shared by serve, tools and call.
func parseConfig(name string, args []string, stderr io.Writer, extra func(*flag.FlagSet)) (Config, *flag.FlagSet, error) {
	var cfg Config
	fs := flag.NewFlagSet("mcp-server "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	toolsets := bindFlags(fs, &cfg)
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return cfg, fs, err
	}
	return cfg, fs, cfg.finish(*toolsets)
}

func newLogger(level string, w io.Writer) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

// newStdLogger adapts slog for libraries that take a *log.Logger.
func newStdLogger(l *slog.Logger) *log.Logger {
	return slog.NewLogLogger(l.Handler(), slog.LevelError)
}
