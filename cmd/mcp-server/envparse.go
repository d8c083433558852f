package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The flags of every subcommand are strict, and an environment variable is
// read by its flag's own parser: a value refused as a flag is refused as a
// variable, naming the variable and the accepted forms.
//
//   - booleans: true/false, 1/0, yes/no, on/off, in any case (parseSwitch);
//   - durations: a number with a unit (90s, 2m, 1h30m); a bare number other
//     than 0 is refused rather than read as nanoseconds or seconds;
//   - integers: a whole decimal number.
//
// A flag whose usage ends in "[NAME]" takes its default from the variable
// NAME when that is set and not empty; the command line wins over it.

// envNamePattern finds the variable named at the end of a flag's usage.
var envNamePattern = regexp.MustCompile(`\[([A-Z][A-Z0-9_]*)\]$`)

// flagEnv returns the environment variable bound to f, or "".
func flagEnv(f *flag.Flag) string {
	if m := envNamePattern.FindStringSubmatch(f.Usage); m != nil {
		return m[1]
	}
	return ""
}

// newFlagSet is a subcommand's flag set: errors come back to the caller
// (run prints them once, with a pointer to the help) and -h/--help prints
// the command's help (run handles flag.ErrHelp).
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("mcp-server "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseFlags makes fs's flags strict, applies their environment variables
// and then parses args.
func parseFlags(fs *flag.FlagSet, args []string) error {
	strictFlags(fs)
	if err := applyEnv(fs, os.LookupEnv); err != nil {
		return err
	}
	err := fs.Parse(args)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		err = &usageError{command: strings.TrimPrefix(fs.Name(), "mcp-server "), err: err}
	}
	return err
}

// applyEnv sets every flag bound to a variable (flagEnv) that lookup
// finds set and not empty, through the flag's own parser. It does not mark
// the flag set: fs.Visit still lists only the command line's flags.
func applyEnv(fs *flag.FlagSet, lookup func(string) (string, bool)) error {
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		name := flagEnv(f)
		if name == "" {
			return
		}
		v, ok := lookup(name)
		if !ok || v == "" {
			return
		}
		if err := f.Value.Set(v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%s: %w", name, v, err))
		}
	})
	return errors.Join(errs...)
}

// strictFlags replaces the parser of fs's boolean, integer and duration
// flags by the strict ones above. Flags already strict are left alone.
func strictFlags(fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		g, ok := f.Value.(flag.Getter)
		if !ok {
			return
		}
		switch g.(type) {
		case *strictBool, *strictInt, *strictDuration:
			return
		}
		switch g.Get().(type) {
		case bool:
			f.Value = &strictBool{g}
		case int:
			f.Value = &strictInt{g}
		case time.Duration:
			f.Value = &strictDuration{g}
		}
	})
}

// flagKind names the type of value a strict flag takes, for the help; ""
// for a boolean (a switch).
func flagKind(f *flag.Flag) string {
	switch f.Value.(type) {
	case *strictBool:
		return ""
	case *strictInt:
		return "int"
	case *strictDuration:
		return "duration"
	}
	return "string"
}

// parseInt reads an integer flag or variable.
func parseInt(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, errors.New("want a whole number, e.g. 100")
	}
	return n, nil
}

// bareNumber is a number without a unit.
var bareNumber = regexp.MustCompile(`^[+-]?[0-9]*\.?[0-9]+$`)

// parseDuration reads a duration flag or variable: a number needs a unit,
// except 0.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if bareNumber.MatchString(s) {
		if f, err := strconv.ParseFloat(s, 64); err == nil && f == 0 {
			return 0, nil
		}
		return 0, fmt.Errorf("a duration needs a unit, e.g. %ss or 2m", strings.TrimLeft(s, "+"))
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, errors.New("want a duration with a unit, e.g. 90s, 2m or 1h30m")
	}
	return d, nil
}

// strictBool is a boolean flag read by parseSwitch, as the X-MCP-Readonly
// header is.
type strictBool struct{ flag.Getter }

func (b *strictBool) Set(s string) error {
	v, err := parseSwitch(s)
	if err != nil {
		return err
	}
	return b.Getter.Set(strconv.FormatBool(v))
}

// IsBoolFlag lets the flag stand alone (--read-only).
func (b *strictBool) IsBoolFlag() bool { return true }

// String may be called on a zero value by the flag package.
func (b *strictBool) String() string {
	if b == nil || b.Getter == nil {
		return ""
	}
	return b.Getter.String()
}

// strictInt is an integer flag read by parseInt.
type strictInt struct{ flag.Getter }

func (n *strictInt) Set(s string) error {
	v, err := parseInt(s)
	if err != nil {
		return err
	}
	return n.Getter.Set(strconv.Itoa(v))
}

func (n *strictInt) String() string {
	if n == nil || n.Getter == nil {
		return ""
	}
	return n.Getter.String()
}

// strictDuration is a duration flag read by parseDuration.
type strictDuration struct{ flag.Getter }

func (d *strictDuration) Set(s string) error {
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	return d.Getter.Set(v.String())
}

func (d *strictDuration) String() string {
	if d == nil || d.Getter == nil {
		return ""
	}
	return d.Getter.String()
}
