// Command mcp-server exposes the Pipedrive, Partner Center Referrals and
// WorkSpan connectors as MCP tools and resources, over stdio or streamable
// HTTP.
//
// Usage:
//
//	mcp-server [serve] [flags]         serve MCP over stdio (or HTTP with --http)
//	mcp-server tools [--json]          print the tool registry
//	mcp-server call [flags] TOOL [JSON]  run one tool call and print its result
//	mcp-server sandbox [--addr ADDR]   serve the Pipedrive sandbox on loopback
//	mcp-server schemas [--dir DIR]     write every tool's JSON Schemas
//	mcp-server docs                    regenerate the tool and resource tables in README.md
//	mcp-server hash-key KEY            print the hash to put in --api-keys-file
//	mcp-server version                 print the version (also --version)
//	mcp-server help [COMMAND]          print the help (also -h, --help)
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
	"regexp"
	"strings"
	"syscall"

	"github.com/cosell-mcp/cosell-mcp/internal/httpauth"
	"github.com/cosell-mcp/cosell-mcp/internal/tracing"
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
	default:
		fmt.Fprintln(os.Stderr, "mcp-server:", err)
		os.Exit(2)
	}
}

// run dispatches a subcommand; it is main without the process exit.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	name := ""
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		name, args = args[0], args[1:]
	}
	if name == "" {
		for _, a := range args {
			switch a {
			case "-version", "--version":
				printVersion(stdout)
				return nil
			case "-h", "-help", "--help":
				printHelp(stdout)
				return nil
			}
		}
		name = "serve"
	}
	c, ok := lookupCommand(name)
	if !ok {
		return fmt.Errorf("unknown command %q: mcp-server help lists the commands", name)
	}
	if helpRequested(args) {
		printCommandHelp(stdout, c)
		return nil
	}
	err := c.run(ctx, args, stdin, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		printCommandHelp(stdout, c)
		return nil
	}
	return err
}

// usageError is a command line the command's flags refuse.
type usageError struct {
	command string
	err     error
}

func (e *usageError) Error() string {
	return fmt.Sprintf("%v (mcp-server help %s lists the flags)", e.err, e.command)
}

func (e *usageError) Unwrap() error { return e.err }

// parseConfig parses the server flags shared by serve and call, and extra
// ones a command adds; each flag's environment variable sets its default.
func parseConfig(name string, args []string, _ io.Writer, extra func(*flag.FlagSet)) (Config, *flag.FlagSet, error) {
	var cfg Config
	fs := newFlagSet(name)
	toolsets := bindFlags(fs, &cfg)
	if extra != nil {
		extra(fs)
	}
	if err := parseFlags(fs, args); err != nil {
		return cfg, fs, err
	}
	return cfg, fs, withVariables(fs, cfg.finish(*toolsets))
}

// flagMention is a flag named in an error message.
var flagMention = regexp.MustCompile(`--([a-z0-9-]+)`)

// withVariables names, beside each flag an error mentions, the environment
// variable its value came from when not the command line
// ("--budget-limit (COSELL_BUDGET_LIMIT) must be at least 1").
func withVariables(fs *flag.FlagSet, err error) error {
	if err == nil {
		return nil
	}
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })
	msg := err.Error()
	named := flagMention.ReplaceAllStringFunc(msg, func(m string) string {
		f := fs.Lookup(m[2:])
		if f == nil || onCommandLine[f.Name] {
			return m
		}
		env := flagEnv(f)
		if v, ok := os.LookupEnv(env); env != "" && ok && v != "" && !strings.Contains(msg, env) {
			return m + " (" + env + ")"
		}
		return m
	})
	if named == msg {
		return err
	}
	return &renamedError{msg: named, err: err}
}

// renamedError is err with a more helpful message.
type renamedError struct {
	msg string
	err error
}

func (e *renamedError) Error() string { return e.msg }
func (e *renamedError) Unwrap() error { return e.err }

// hashKeyCmd prints the hash of an API key for --api-keys-file.
func hashKeyCmd(_ context.Context, args []string, _ io.Reader, stdout, _ io.Writer) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: mcp-server hash-key KEY")
	}
	fmt.Fprintln(stdout, httpauth.HashKey(args[0]))
	return nil
}

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(tracing.NewLogHandler(w, cfg.LogFormat, &slog.HandlerOptions{Level: l}))
}

// newStdLogger adapts slog for libraries that take a *log.Logger.
func newStdLogger(l *slog.Logger) *log.Logger {
	return slog.NewLogLogger(l.Handler(), slog.LevelError)
}
